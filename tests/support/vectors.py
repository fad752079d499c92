"""Where the shared test vectors are: ../shared/vectors next to the checkout, or $KMS_TEST_VECTORS."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def vectors_dir() -> Path:
    """The first of $KMS_TEST_VECTORS, ../shared/vectors (beside this checkout) and /work/shared/vectors."""
    candidates = [os.environ.get("KMS_TEST_VECTORS"), REPO.parent / "shared" / "vectors", "/work/shared/vectors"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return REPO.parent / "shared" / "vectors"
