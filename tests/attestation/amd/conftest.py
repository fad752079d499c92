"""Fixtures for the SEV-SNP tests: the real samples (see vectors/attestation/README.md) and simulated PKIs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from attestation.tee.sim_amd import SimAmdPki

# Simulated PKIs are valid from SIM_START for 7 years (VCEK); SIM_NOW is pinned inside.
SIM_START = datetime(2025, 1, 1, tzinfo=UTC)
SIM_NOW = datetime(2026, 6, 1, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Sample:
    name: str
    report: bytes
    vcek: bytes
    cert_chain: bytes | None
    not_before: datetime  # the VCEK window (the narrowest of the chain)
    not_after: datetime

    @property
    def inside(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def snp_samples(att_vectors: Path) -> dict[str, Sample]:
    virtee = att_vectors / "virtee-sev"
    trustee = att_vectors / "trustee"
    return {
        "virtee-milan": Sample(
            "virtee-milan",
            bytes.fromhex((virtee / "report_milan.hex").read_text().strip()),
            (virtee / "vcek_milan.der").read_bytes(),
            (virtee / "cert_chain_milan").read_bytes(),
            datetime(2023, 4, 3, 19, 23, 43, tzinfo=UTC),
            datetime(2030, 4, 3, 19, 23, 43, tzinfo=UTC),
        ),
        "trustee-milan": Sample(
            "trustee-milan",
            (trustee / "test-report.bin").read_bytes(),
            (trustee / "test-vcek.der").read_bytes(),
            None,  # with the pinned Milan ARK/ASK
            datetime(2023, 1, 24, 17, 58, 26, tzinfo=UTC),
            datetime(2030, 1, 24, 17, 58, 26, tzinfo=UTC),
        ),
    }


def _pki(tmp_path_factory: pytest.TempPathFactory, name: str, product: str) -> SimAmdPki:
    return SimAmdPki.load_or_create(tmp_path_factory.mktemp(name), product, not_before=SIM_START, rsa_bits=2048)


@pytest.fixture(scope="session")
def sim_milan(tmp_path_factory: pytest.TempPathFactory) -> SimAmdPki:
    return _pki(tmp_path_factory, "sim-amd-milan", "Milan")


@pytest.fixture(scope="session")
def sim_other_milan(tmp_path_factory: pytest.TempPathFactory) -> SimAmdPki:
    """A second, unrelated Milan PKI with the same names as `sim_milan`."""
    return _pki(tmp_path_factory, "sim-amd-other", "Milan")


@pytest.fixture(scope="session")
def sim_genoa(tmp_path_factory: pytest.TempPathFactory) -> SimAmdPki:
    return _pki(tmp_path_factory, "sim-amd-genoa", "Genoa")


@pytest.fixture(scope="session")
def sim_turin(tmp_path_factory: pytest.TempPathFactory) -> SimAmdPki:
    return _pki(tmp_path_factory, "sim-amd-turin", "Turin")
