"""The simulated TEE: real formats, simulated roots trusted only when passed, measurement-bound sealing keys."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from attestation.errors import VerificationError
from attestation.formats.sgx import parse_quote as parse_intel
from attestation.formats.snp import parse_evidence
from attestation.tee.simulated import KINDS, SimulatedTee, default_measurement
from attestation.verify import Policy, detect_kind, verify_evidence

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim-tee")


@pytest.mark.parametrize("kind", KINDS)
def test_evidence_verifies_only_with_the_simulated_roots(sim_dir: Path, kind: str) -> None:
    tee = SimulatedTee(sim_dir, kind)
    evidence = tee.quote(b"binding")
    assert detect_kind(evidence.data) == kind
    policy = Policy(report_data=b"binding".ljust(64, b"\x00"), measurements=(tee.measurement,))
    claims = verify_evidence(evidence.data, now=NOW, policy=policy, roots=tee.roots(), collateral=evidence.collateral)
    assert claims.tee == kind and claims.simulated and claims.measurement == default_measurement(kind)
    with pytest.raises(VerificationError):  # the pinned vendor roots never accept simulated evidence
        verify_evidence(evidence.data, now=NOW, policy=policy, collateral=evidence.collateral)
    tampered = bytearray(evidence.data)
    tampered[0x60] ^= 1  # inside the signed body of every kind
    with pytest.raises(VerificationError):
        verify_evidence(bytes(tampered), now=NOW, roots=tee.roots(), collateral=evidence.collateral)


def test_formats_are_the_real_ones(sim_dir: Path) -> None:
    sgx = SimulatedTee(sim_dir, "sgx").quote(b"x").data
    assert parse_intel(sgx).serialize() == sgx[: len(parse_intel(sgx).serialize())]
    snp = SimulatedTee(sim_dir, "sev-snp").quote(b"x").data
    report, table = parse_evidence(snp)
    assert report.to_bytes() == snp[:0x4A0] and table is not None


def test_measurement_and_host_data_are_configurable(sim_dir: Path) -> None:
    measurement = bytes(range(48))
    host = b"\x11" * 32
    tee = SimulatedTee(sim_dir, "sev-snp", measurement=measurement, host_data=host)
    claims = verify_evidence(tee.quote(b"").data, now=NOW, roots=tee.roots())
    assert claims.measurement == measurement and claims.host_data == host
    tdx = SimulatedTee(sim_dir, "tdx", measurement=measurement, host_data=b"\x22" * 48)
    ev = tdx.quote(b"")
    claims = verify_evidence(ev.data, now=NOW, roots=tdx.roots(), collateral=ev.collateral)
    assert claims.measurement == measurement and claims.host_data == b"\x22" * 48
    with pytest.raises(VerificationError, match="measurement"):
        verify_evidence(ev.data, now=NOW, roots=tdx.roots(), collateral=ev.collateral,
                        policy=Policy(measurements=(bytes(48),)))


def test_the_pki_is_created_once_and_reused(sim_dir: Path) -> None:
    a = SimulatedTee(sim_dir, "sev-snp").root_pem()
    b = SimulatedTee(sim_dir, "sev-snp").root_pem()
    assert a == b


def test_sealing_keys_depend_on_directory_measurement_and_label(sim_dir: Path, tmp_path: Path) -> None:
    tee = SimulatedTee(sim_dir, "sev-snp")
    key = tee.sealing_key(b"kms")
    assert len(key) == 32 and key == SimulatedTee(sim_dir, "sev-snp").sealing_key(b"kms")
    assert key != tee.sealing_key(b"other")
    assert key != SimulatedTee(sim_dir, "sev-snp", measurement=bytes(48)).sealing_key(b"kms")
    assert key != SimulatedTee(tmp_path, "sev-snp").sealing_key(b"kms")  # another simulated chip
    assert (sim_dir / "platform-secret").stat().st_mode & 0o077 == 0


def test_bad_parameters_are_refused(sim_dir: Path) -> None:
    with pytest.raises(ValueError):
        SimulatedTee(sim_dir, "nitro")
    with pytest.raises(ValueError):
        SimulatedTee(sim_dir, "sgx", measurement=bytes(48))
    with pytest.raises(ValueError):
        SimulatedTee(sim_dir, "sev-snp").quote(bytes(65))
    with pytest.raises(ValueError):
        SimulatedTee(sim_dir, "sev-snp").sealing_key(b"")
