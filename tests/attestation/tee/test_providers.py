"""Detection order, explicit choice by name, and the shared helpers."""

from __future__ import annotations

import errno
import hashlib
import hmac
from pathlib import Path

import pytest

from attestation.tee import detect
from attestation.tee.configfs_tsm import ConfigFsTsm
from attestation.tee.gramine import GramineSgx
from attestation.tee.providers import (
    OsFileOps,
    TeeUnavailableError,
    derive_sealing_key,
    detect_provider,
    pad_report_data,
    provider_by_name,
)
from attestation.tee.sev_guest import SevGuest
from tests.attestation.tee.fakes import FakeGramine, FakeSnpFirmware, FakeTsmKernel


class Combined(FakeTsmKernel):
    """A tree holding configfs-tsm and Gramine's files (to check which one detection prefers)."""

    def __init__(self, root: Path, provider: str | None, **kwargs: object) -> None:
        super().__init__(root, provider, **kwargs)  # type: ignore[arg-type]
        self.gramine = FakeGramine(root)


def test_nothing_present(tmp_path: Path) -> None:
    assert detect_provider(tmp_path) is None
    assert detect(tmp_path) is None


@pytest.mark.parametrize(("provider", "kind"), [("tdx_guest", "tdx"), ("sev_guest", "sev-snp")])
def test_configfs_tsm_wins_over_everything(tmp_path: Path, provider: str, kind: str) -> None:
    kernel = Combined(tmp_path, provider)
    firmware = FakeSnpFirmware(tmp_path)
    found = detect_provider(tmp_path, fs=kernel, ioctl=firmware)
    assert isinstance(found, ConfigFsTsm)
    assert found.kind == kind
    assert list(kernel.base.iterdir()) == []  # the probe's entry is gone


def test_unregistered_configfs_falls_back_to_gramine_then_sev_guest(tmp_path: Path) -> None:
    kernel = Combined(tmp_path / "a", None)
    assert isinstance(detect_provider(tmp_path / "a", fs=kernel), GramineSgx)

    only_snp = tmp_path / "b"
    kernel = FakeTsmKernel(only_snp, None)
    FakeSnpFirmware(only_snp)
    assert isinstance(detect_provider(only_snp, fs=kernel), SevGuest)


def test_unknown_configfs_provider_is_skipped(tmp_path: Path) -> None:
    kernel = Combined(tmp_path, "arm_cca_guest")
    assert isinstance(detect_provider(tmp_path, fs=kernel), GramineSgx)


def test_gramine_before_sev_guest(tmp_path: Path) -> None:
    fake = FakeGramine(tmp_path)
    FakeSnpFirmware(tmp_path)
    assert isinstance(detect_provider(tmp_path, fs=fake), GramineSgx)


def test_sev_guest_alone(tmp_path: Path) -> None:
    firmware = FakeSnpFirmware(tmp_path)
    found = detect_provider(tmp_path, ioctl=firmware)
    assert isinstance(found, SevGuest)
    assert len(found.sealing_key(b"kms-bootstrap/v1")) == 32


def test_present_but_forbidden_configfs_raises_instead_of_reporting_no_tee(tmp_path: Path) -> None:
    kernel = FakeTsmKernel(tmp_path, "tdx_guest", mkdir_errno=errno.EACCES)
    with pytest.raises(TeeUnavailableError, match="not allowed"):
        detect_provider(tmp_path, fs=kernel)


def test_detected_providers_quote_with_their_kind(tmp_path: Path) -> None:
    for name, setup, kind in [
        ("tdx", lambda r: (FakeTsmKernel(r, "tdx_guest"), None), "tdx"),
        ("snp", lambda r: (FakeTsmKernel(r, "sev_guest"), None), "sev-snp"),
        ("sgx", lambda r: (FakeGramine(r), None), "sgx"),
        ("dev", lambda r: (OsFileOps(), FakeSnpFirmware(r)), "sev-snp"),
    ]:
        root = tmp_path / name
        root.mkdir()
        fs, ioctl = setup(root)
        provider = detect_provider(root, fs=fs, ioctl=ioctl)
        assert provider is not None and provider.kind == kind
        evidence = provider.quote(b"nonce")
        assert evidence.kind == kind and b"nonce" + bytes(59) in evidence.data


def test_provider_by_name(tmp_path: Path) -> None:
    tdx_root = tmp_path / "tdx"
    tdx_kernel = FakeTsmKernel(tdx_root, "tdx_guest")
    assert isinstance(provider_by_name("tdx", tdx_root, fs=tdx_kernel), ConfigFsTsm)
    with pytest.raises(TeeUnavailableError, match="serves provider 'tdx_guest'"):
        provider_by_name("sev-snp", tdx_root, fs=tdx_kernel)

    snp_root = tmp_path / "snp"
    snp_kernel = FakeTsmKernel(snp_root, "sev_guest")
    assert provider_by_name("sev-snp", snp_root, fs=snp_kernel).kind == "sev-snp"
    with pytest.raises(TeeUnavailableError, match=r"TDX: .*serves provider 'sev_guest'"):
        provider_by_name("tdx", snp_root, fs=snp_kernel)

    dev_root = tmp_path / "dev-only"
    FakeSnpFirmware(dev_root)
    assert isinstance(provider_by_name("sev-snp", dev_root), SevGuest)

    sgx_root = tmp_path / "sgx"
    assert isinstance(provider_by_name("sgx", sgx_root, fs=FakeGramine(sgx_root)), GramineSgx)


def test_provider_by_name_missing_interfaces(tmp_path: Path) -> None:
    with pytest.raises(TeeUnavailableError, match=r"TDX: .*tsm/report not found"):
        provider_by_name("tdx", tmp_path)
    with pytest.raises(TeeUnavailableError, match=r"SEV-SNP: .*tsm/report not found.*dev/sev-guest not found"):
        provider_by_name("sev-snp", tmp_path)
    with pytest.raises(TeeUnavailableError, match=r"SGX: .*dev/attestation not found"):
        provider_by_name("sgx", tmp_path)
    with pytest.raises(ValueError, match="unknown TEE provider 'simulated'"):
        provider_by_name("simulated", tmp_path)


def test_pad_report_data() -> None:
    assert pad_report_data(b"") == bytes(64)
    assert pad_report_data(bytearray(b"ab")) == b"ab" + bytes(62)
    assert pad_report_data(b"\xff" * 64) == b"\xff" * 64
    with pytest.raises(ValueError, match="65 bytes"):
        pad_report_data(bytes(65))


def test_derive_sealing_key_is_rfc5869_hkdf_with_our_salt() -> None:
    # RFC 5869 written out with hmac: PRK = HMAC(salt, IKM); OKM = T(1) = HMAC(PRK, info || 0x01) (32 bytes = 1 block).
    ikm, info = bytes(16), b"kms-bootstrap/v1"
    prk = hmac.new(b"zt-kms/tee-sealing-key/v1", ikm, hashlib.sha256).digest()
    expected = hmac.new(prk, info + b"\x01", hashlib.sha256).digest()
    key = derive_sealing_key(ikm, info)
    assert key == expected
    assert key != derive_sealing_key(bytes(16), b"kms-bootstrap/v2")
    assert key != derive_sealing_key(b"\x01" + bytes(15), b"kms-bootstrap/v1")
    assert key == derive_sealing_key(bytes(16), b"kms-bootstrap/v1")


def test_os_file_ops_never_creates_attributes(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        OsFileOps().write(tmp_path / "inblob", b"x")
    assert not (tmp_path / "inblob").exists()
