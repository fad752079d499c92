"""Fixtures for the Intel DCAP tests: the real samples (vectors/attestation/README.md) and a simulated PKI."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from attestation.tee.sim_intel import SimIntelPki
from attestation.verify.policy import Policy

# The simulated PKI is valid from SIM_START (certificates 20 years, collateral 10); SIM_NOW is pinned inside.
SIM_START = datetime(2025, 1, 1, tzinfo=UTC)
SIM_NOW = datetime(2026, 6, 1, tzinfo=UTC)
CHAIN_ONLY = Policy(require_tcb=False)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Sample:
    """A real quote and how it verifies (README): with its collateral at `now`, or chain + signatures only."""

    name: str
    quote: bytes  # as stored (with any trailing bytes)
    consumed: int  # bytes the quote spans
    tee: str
    now: datetime
    collateral: str | None
    outcome: str | None  # None: verifies; else the check that fails (documented negative case)
    status: str | None = None
    advisories: tuple[str, ...] = ()

    @property
    def policy(self) -> Policy:
        return Policy() if self.collateral is not None else CHAIN_ONLY


@pytest.fixture(scope="session")
def intel_samples(att_vectors: Path) -> dict[str, Sample]:
    dq = att_vectors / "dcap-qvl"
    gt = att_vectors / "go-tdx-guest"
    hex_text = (dq / "tdx-quote.hex").read_text().strip()
    return {
        s.name: s
        for s in (
            Sample(
                "sgx_quote", (dq / "sgx_quote").read_bytes(), 4600, "sgx", utc("2025-06-25T00:00:00"),
                (dq / "sgx_quote_collateral.json").read_text(), None,
                "ConfigurationAndSWHardeningNeeded", ("INTEL-SA-00289", "INTEL-SA-00615"),
            ),
            Sample(
                "tdx_quote", (dq / "tdx_quote").read_bytes(), 4936, "tdx", utc("2025-06-25T00:00:00"),
                (dq / "tdx_quote_collateral.json").read_text(), None, "UpToDate",
            ),
            Sample(
                "tdx-quote.hex", bytes.fromhex(hex_text.removeprefix("0x")), 4936, "tdx", utc("2025-01-01T00:00:00"),
                None, None,
            ),
            Sample(
                "tdx_prod_quote_SPR_E4", (gt / "tdx_prod_quote_SPR_E4.dat").read_bytes(), 4935, "tdx",
                utc("2023-07-01T01:00:00"), (gt / "tdx_prod_quote_SPR_E4.collateral.dcap-qvl.json").read_text(),
                "tcb-level",
            ),
            Sample(
                "cos-113-tdx-quote", (gt / "cos-113-tdx-quote.dat").read_bytes(), 4935, "tdx",
                utc("2025-01-01T00:00:00"), None, None,
            ),
        )
    }


@pytest.fixture(scope="session")
def sim_pki(tmp_path_factory: pytest.TempPathFactory) -> SimIntelPki:
    return SimIntelPki.load_or_create(tmp_path_factory.mktemp("sim-intel"), not_before=SIM_START)


@pytest.fixture(scope="session")
def dcap_qvl() -> ModuleType:
    """The independent verifier (test extra `dcap-qvl`); missing fails in CI and skips elsewhere."""
    try:
        import dcap_qvl
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("dcap-qvl is not installed (pip install -e .[test])")
        pytest.skip("dcap-qvl is not installed")
    return dcap_qvl
