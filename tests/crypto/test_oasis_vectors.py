"""The OASIS KMIP 2.1 mandatory cryptographic test cases, replayed against kms.crypto (see tests/crypto/oasis.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crypto.oasis import OASIS_MANDATORY, require_vectors, run_file

PATTERNS = ("CS-BC-M-*.xml", "CS-AC-M-4-21.xml", "CS-AC-M-5-21.xml", "CS-AC-M-6-21.xml", "CS-AC-M-7-21.xml")


def _files() -> list[str]:
    if not OASIS_MANDATORY.is_dir():
        return ["<vectors missing>"]
    return sorted({p.name for pattern in PATTERNS for p in OASIS_MANDATORY.glob(pattern)})


@pytest.mark.parametrize("name", _files())
def test_oasis_file(name: str) -> None:
    folder = require_vectors()
    outcomes = run_file(folder / name)
    steps = [o for o in outcomes if o.operation not in ("Register", "Create", "Revoke", "Destroy")]
    assert steps, f"{name}: no cryptographic step found"
    unchecked = [
        o for o in steps if o.status not in ("pass", "shape") and not o.status.startswith("skip: server policy")
    ]
    assert not unchecked, f"{name}: steps not checked: {unchecked}"


def test_vector_coverage() -> None:
    """Guards against the runner silently skipping: the exact-value steps we know we reproduce must all be there."""
    folder = require_vectors()
    exact = 0
    for name in _files():
        exact += sum(
            1 for o in run_file(Path(folder) / name) if o.status == "pass" and o.operation not in ("Register", "Create")
        )
    # 97 = every Encrypt/Decrypt/MAC/MACVerify/Hash step of these files except the 4 under Create'd (random) keys
    # and the 3 refused by server policy.
    assert exact >= 97, f"only {exact} vector steps were checked exactly"
