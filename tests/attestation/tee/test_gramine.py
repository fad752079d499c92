"""Gramine SGX provider against a fake /dev/attestation (the quote is built from the user_report_data written)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from attestation.tee.gramine import GramineSgx
from attestation.tee.providers import (
    SEALING_SALT,
    SealingKeyUnavailableError,
    TeeDeviceError,
    TeeUnavailableError,
)
from tests.attestation.tee.fakes import SGX_REPORTDATA_OFFSET, FakeGramine

LABEL = b"kms-bootstrap/v1"


def hkdf(ikm: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=SEALING_SALT, info=label).derive(ikm)


def test_quote_binds_the_report_data(tmp_path: Path) -> None:
    fake = FakeGramine(tmp_path)
    sgx = GramineSgx(tmp_path, fs=fake)

    evidence = sgx.quote(b"\x5a" * 32)

    assert sgx.kind == evidence.kind == "sgx"
    assert evidence.data[SGX_REPORTDATA_OFFSET : SGX_REPORTDATA_OFFSET + 64] == b"\x5a" * 32 + bytes(32)
    assert fake.writes == [b"\x5a" * 32 + bytes(32)]  # all 64 bytes written: no stale upper half
    assert evidence.certificates is None


def test_concurrent_quotes_each_carry_their_own_report_data(tmp_path: Path) -> None:
    sgx = GramineSgx(tmp_path, fs=FakeGramine(tmp_path))
    results: dict[int, bytes] = {}

    def run(i: int) -> None:
        results[i] = sgx.quote(bytes([i]) * 64).data

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, quote in results.items():
        assert quote[SGX_REPORTDATA_OFFSET : SGX_REPORTDATA_OFFSET + 64] == bytes([i]) * 64


def test_quote_needs_dcap(tmp_path: Path) -> None:
    sgx = GramineSgx(tmp_path, fs=FakeGramine(tmp_path, attestation_type="none"))
    assert sgx.attestation_type() == "none"
    with pytest.raises(TeeUnavailableError, match="attestation type is 'none'"):
        sgx.quote(b"x")


def test_report_data_longer_than_64_bytes_is_refused(tmp_path: Path) -> None:
    fake = FakeGramine(tmp_path)
    with pytest.raises(ValueError, match="at most 64"):
        GramineSgx(tmp_path, fs=fake).quote(bytes(65))
    assert fake.writes == []


def test_sealing_key_from_mrenclave_key_only(tmp_path: Path) -> None:
    sgx = GramineSgx(tmp_path, fs=FakeGramine(tmp_path, mrenclave_key=b"E" * 16, mrsigner_key=b"S" * 16))

    key = sgx.sealing_key(LABEL)

    assert key == hkdf(b"E" * 16, LABEL)
    assert key != hkdf(b"S" * 16, LABEL)
    assert key == sgx.sealing_key(LABEL)
    assert key != sgx.sealing_key(b"config-seal")


def test_sealing_key_changes_with_the_enclave_measurement(tmp_path: Path) -> None:
    one = GramineSgx(tmp_path / "a", fs=FakeGramine(tmp_path / "a", mrenclave_key=b"1" * 16))
    two = GramineSgx(tmp_path / "b", fs=FakeGramine(tmp_path / "b", mrenclave_key=b"2" * 16))
    assert one.sealing_key(LABEL) != two.sealing_key(LABEL)


def test_sealing_key_missing_or_malformed(tmp_path: Path) -> None:
    missing = GramineSgx(tmp_path / "a", fs=FakeGramine(tmp_path / "a", mrenclave_key=None))
    with pytest.raises(SealingKeyUnavailableError, match="_sgx_mrenclave not found"):
        missing.sealing_key(LABEL)
    wrong = GramineSgx(tmp_path / "b", fs=FakeGramine(tmp_path / "b", mrenclave_key=b"E" * 32))
    with pytest.raises(TeeDeviceError, match="32 bytes, expected the 16-byte"):
        wrong.sealing_key(LABEL)


def test_not_inside_gramine(tmp_path: Path) -> None:
    with pytest.raises(TeeUnavailableError, match="not running inside Gramine"):
        GramineSgx(tmp_path)
