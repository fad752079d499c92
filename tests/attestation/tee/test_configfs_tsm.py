"""configfs-tsm provider against a simulated kernel (tests/attestation/tee/fakes.py: the outblob is generated from
the inblob the provider wrote, so a report that carries our data proves the write reached the kernel)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from attestation.errors import AttestationError
from attestation.tee.configfs_tsm import TSM_REPORT_DIR, ConfigFsTsm
from attestation.tee.providers import (
    OsFileOps,
    SealingKeyUnavailableError,
    TeeDeviceError,
    TeeUnavailableError,
    UnsupportedProviderError,
)
from attestation.tee.sev_guest import SNP_GET_DERIVED_KEY
from tests.attestation.tee.fakes import (
    SNP_REPORTDATA_OFFSET,
    SNP_VMPL_OFFSET,
    TDX_REPORTDATA_OFFSET,
    FakeSnpFirmware,
    FakeTsmKernel,
    cert_table,
)

RD = bytes(range(32))


def leftover_entries(kernel: FakeTsmKernel) -> list[str]:
    return sorted(p.name for p in kernel.base.iterdir())


def test_tdx_quote_carries_report_data_and_cleans_up(tmp_path: Path) -> None:
    kernel = FakeTsmKernel(tmp_path, "tdx_guest")
    tsm = ConfigFsTsm(tmp_path, fs=kernel)
    assert (tsm.kind, tsm.provider) == ("tdx", "tdx_guest")

    evidence = tsm.quote(RD)

    assert evidence.kind == "tdx"
    assert evidence.data[TDX_REPORTDATA_OFFSET : TDX_REPORTDATA_OFFSET + 64] == RD + bytes(32)
    assert evidence.certificates is None
    assert kernel.writes == [("inblob", RD + bytes(32))]  # one write, always 64 bytes (tdx_guest demands it)
    assert kernel.reports == 1
    assert leftover_entries(kernel) == []
    assert sorted(kernel.created) == sorted(kernel.removed)  # the probe's entry and the report's


def test_each_quote_uses_a_fresh_uniquely_named_entry(tmp_path: Path) -> None:
    kernel = FakeTsmKernel(tmp_path, "tdx_guest")
    tsm = ConfigFsTsm(tmp_path, fs=kernel)
    first = tsm.quote(b"a")
    second = tsm.quote(b"b")
    assert first.data != second.data
    assert len(set(kernel.created)) == len(kernel.created) == 3
    assert all(name.startswith("zt-kms-") for name in kernel.created)
    assert leftover_entries(kernel) == []


def test_snp_quote_with_certificate_table_and_privlevel(tmp_path: Path) -> None:
    table = cert_table([("63da758d-e664-4564-adc5-f4b93be8accd", b"vcek-der")])
    kernel = FakeTsmKernel(tmp_path, "sev_guest", auxblob=table)
    tsm = ConfigFsTsm(tmp_path, fs=kernel, privlevel=2)
    assert tsm.kind == "sev-snp"

    evidence = tsm.quote(b"\x42" * 64)

    assert evidence.kind == "sev-snp"
    assert evidence.data[SNP_REPORTDATA_OFFSET : SNP_REPORTDATA_OFFSET + 64] == b"\x42" * 64
    assert int.from_bytes(evidence.data[SNP_VMPL_OFFSET : SNP_VMPL_OFFSET + 4], "little") == 2
    assert evidence.certificates == table
    assert kernel.writes == [("privlevel", b"2\n"), ("inblob", b"\x42" * 64)]
    assert leftover_entries(kernel) == []


def test_snp_without_host_certificates_has_none(tmp_path: Path) -> None:
    tsm = ConfigFsTsm(tmp_path, fs=FakeTsmKernel(tmp_path, "sev_guest"))
    assert tsm.quote(RD).certificates is None


def test_privlevel_checks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SEV-SNP only"):
        ConfigFsTsm(tmp_path, fs=FakeTsmKernel(tmp_path, "tdx_guest"), privlevel=0)
    other = tmp_path / "snp"
    with pytest.raises(ValueError, match=r"outside \[1, 3\]"):
        ConfigFsTsm(other, fs=FakeTsmKernel(other, "sev_guest", privlevel_floor=1), privlevel=0)


def test_report_data_longer_than_64_bytes_is_refused_before_any_write(tmp_path: Path) -> None:
    kernel = FakeTsmKernel(tmp_path, "tdx_guest")
    tsm = ConfigFsTsm(tmp_path, fs=kernel)
    with pytest.raises(ValueError, match="65 bytes"):
        tsm.quote(bytes(65))
    assert kernel.writes == []
    assert len(kernel.created) == 1  # only the probe
    with pytest.raises(TypeError):
        tsm.quote("text")  # type: ignore[arg-type]


def test_concurrent_writer_is_detected_and_retried(tmp_path: Path) -> None:
    kernel = FakeTsmKernel(tmp_path, "tdx_guest", interfere=1)
    tsm = ConfigFsTsm(tmp_path, fs=kernel)

    evidence = tsm.quote(RD)

    # The first report carried the other writer's data; it was thrown away, the retry carries ours.
    assert evidence.data[TDX_REPORTDATA_OFFSET : TDX_REPORTDATA_OFFSET + 64] == RD + bytes(32)
    assert kernel.reports == 2
    assert len(kernel.created) == 3
    assert leftover_entries(kernel) == []


def test_persistent_concurrent_writer_fails_instead_of_returning_foreign_data(tmp_path: Path) -> None:
    kernel = FakeTsmKernel(tmp_path, "tdx_guest", interfere=10)
    tsm = ConfigFsTsm(tmp_path, fs=kernel, attempts=3)
    with pytest.raises(TeeDeviceError, match="generation mismatch"):
        tsm.quote(RD)
    assert kernel.reports == 3
    assert leftover_entries(kernel) == []


def test_kernel_error_on_outblob_is_a_device_error_and_the_entry_is_removed(tmp_path: Path) -> None:
    class FailingKernel(FakeTsmKernel):
        def read(self, path: Path) -> bytes:
            if path.name == "outblob":
                raise OSError(errno.EIO, "quote service unavailable", str(path))
            return super().read(path)

    kernel = FailingKernel(tmp_path, "tdx_guest")
    tsm = ConfigFsTsm(tmp_path, fs=kernel)
    with pytest.raises(TeeDeviceError, match="outblob: quote service unavailable"):
        tsm.quote(RD)
    assert leftover_entries(kernel) == []


def test_no_registered_provider(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedProviderError, match="no TSM provider registered"):
        ConfigFsTsm(tmp_path, fs=FakeTsmKernel(tmp_path, None))


def test_unknown_provider(tmp_path: Path) -> None:
    kernel = FakeTsmKernel(tmp_path, "arm_cca_guest")
    with pytest.raises(UnsupportedProviderError, match="arm_cca_guest"):
        ConfigFsTsm(tmp_path, fs=kernel)
    assert leftover_entries(kernel) == []


def test_permission_denied_is_reported_not_hidden(tmp_path: Path) -> None:
    with pytest.raises(TeeUnavailableError, match="not allowed") as info:
        ConfigFsTsm(tmp_path, fs=FakeTsmKernel(tmp_path, "tdx_guest", mkdir_errno=errno.EACCES))
    assert not isinstance(info.value, UnsupportedProviderError)


def test_missing_interface(tmp_path: Path) -> None:
    with pytest.raises(TeeUnavailableError, match=r"configfs-tsm needs Linux >= 6\.7"):
        ConfigFsTsm(tmp_path)


def test_plain_directory_is_not_taken_for_configfs(tmp_path: Path) -> None:
    # The real file operations on an ordinary directory: mkdir works but no kernel fills the entry.
    (tmp_path / TSM_REPORT_DIR).mkdir(parents=True)
    with pytest.raises(TeeDeviceError, match="provider"):
        ConfigFsTsm(tmp_path, fs=OsFileOps())
    assert list((tmp_path / TSM_REPORT_DIR).iterdir()) == []


def test_tdx_has_no_sealing_key(tmp_path: Path) -> None:
    tsm = ConfigFsTsm(tmp_path, fs=FakeTsmKernel(tmp_path, "tdx_guest"))
    with pytest.raises(SealingKeyUnavailableError, match="TDX gives a TD no sealing key") as info:
        tsm.sealing_key(b"kms-bootstrap/v1")
    assert isinstance(info.value, AttestationError)


def test_snp_sealing_key_needs_dev_sev_guest(tmp_path: Path) -> None:
    tsm = ConfigFsTsm(tmp_path, fs=FakeTsmKernel(tmp_path, "sev_guest"))
    with pytest.raises(SealingKeyUnavailableError, match="dev/sev-guest not found"):
        tsm.sealing_key(b"kms-bootstrap/v1")


def test_snp_sealing_key_through_dev_sev_guest_at_the_floor_vmpl(tmp_path: Path) -> None:
    firmware = FakeSnpFirmware(tmp_path, current_vmpl=2)
    tsm = ConfigFsTsm(tmp_path, fs=FakeTsmKernel(tmp_path, "sev_guest", privlevel_floor=2), ioctl=firmware)

    key = tsm.sealing_key(b"kms-bootstrap/v1")

    assert len(key) == 32
    assert key == tsm.sealing_key(b"kms-bootstrap/v1")
    assert key != tsm.sealing_key(b"config-seal")
    command, request = firmware.calls[0]
    assert command == SNP_GET_DERIVED_KEY
    assert int.from_bytes(request[16:20], "little") == 2  # vmpl = privlevel_floor, the VMPL we run at
