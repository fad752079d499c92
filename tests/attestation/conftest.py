"""Attestation test fixtures: the real evidence samples of ../shared/vectors/attestation."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def att_vectors(vectors: Path) -> Path:
    return vectors / "attestation"
