"""Nitro fixtures: the real evervault sample (bytes, parsed, timestamp) and a test PKI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from attestation.formats import nitro
from tests.attestation.nitro.builder import NitroTestPki

# A fixed time for documents of the test PKI (no wall clock anywhere).
SIM_TIME = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def nitro_sample(att_vectors: Path) -> bytes:
    return nitro.decode_text((att_vectors / "nitro-evervault" / "valid-attestation-doc-base64").read_text())


@pytest.fixture(scope="session")
def sample_time(nitro_sample: bytes) -> datetime:
    return nitro.parse(nitro_sample).payload.time


@pytest.fixture(scope="session")
def pki() -> NitroTestPki:
    return NitroTestPki.create(SIM_TIME)
