"""Owner binding: where the owner hash comes from (flag, SNP HOST_DATA, TDX MRCONFIGID) and the 403 check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from attestation.tee.simulated import SimulatedTee
from bootstrap.errors import NotOwnerError
from bootstrap.owner import OwnerConfigError, attested_owner_hash, check_owner, resolve_owner

OWNER = hashlib.sha256(b"owner spki").digest()
OTHER = hashlib.sha256(b"other spki").digest()


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One simulated platform for the module (its vendor PKIs take a while to create)."""
    return tmp_path_factory.mktemp("sim")


def _evidence(sim_dir: Path, kind: str, host_data: bytes | None = None) -> bytes:
    return SimulatedTee(sim_dir, kind, host_data=host_data).quote(bytes(64)).data


def test_snp_host_data(sim_dir: Path) -> None:
    assert attested_owner_hash(_evidence(sim_dir, "sev-snp", OWNER)) == OWNER
    assert attested_owner_hash(_evidence(sim_dir, "sev-snp")) is None  # zero: not bound


def test_tdx_mrconfigid_first_32_bytes(sim_dir: Path) -> None:
    assert attested_owner_hash(_evidence(sim_dir, "tdx", OWNER + bytes(16))) == OWNER
    assert attested_owner_hash(_evidence(sim_dir, "tdx")) is None
    # Fail closed: a non-zero MRCONFIGID is an owner binding even if it holds something else.
    assert attested_owner_hash(_evidence(sim_dir, "tdx", bytes(32) + b"\x01" * 16)) == bytes(32)


def test_sgx_and_garbage_have_no_owner(sim_dir: Path) -> None:
    assert attested_owner_hash(_evidence(sim_dir, "sgx")) is None
    assert attested_owner_hash(b"not evidence") is None


def test_resolve(sim_dir: Path) -> None:
    bound = _evidence(sim_dir, "sev-snp", OWNER)
    unbound = _evidence(sim_dir, "sev-snp")
    assert resolve_owner(None, unbound) == (None, "nobody")
    assert resolve_owner(OTHER.hex(), unbound) == (OTHER, "--bootstrap-owner-key-sha256")
    assert resolve_owner(None, bound) == (OWNER, "the TEE's HOST_DATA/MRCONFIGID")
    assert resolve_owner(OWNER.hex(), bound)[0] == OWNER
    with pytest.raises(OwnerConfigError, match="differs"):
        resolve_owner(OTHER.hex(), bound)


def test_check_owner() -> None:
    check_owner(None, None)
    check_owner(None, OTHER)
    check_owner(OWNER, OWNER)
    with pytest.raises(NotOwnerError, match="present the owner's TLS client certificate"):
        check_owner(OWNER, None)
    with pytest.raises(NotOwnerError, match="not the owner's"):
        check_owner(OWNER, OTHER)
