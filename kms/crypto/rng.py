"""Randomness for keys, IVs and the KMIP RNG operations, always from the operating system's CSPRNG."""

from __future__ import annotations

import os

from kms.crypto.errors import BadParameters

# One request must not be able to make the server allocate (and spend entropy on) arbitrary amounts of memory.
MAX_RANDOM_BYTES = 1024 * 1024


def random_bytes(n: int) -> bytes:
    """Cryptographically secure random bytes; `os.urandom` so no user-space generator state can leak or fork."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise BadParameters("the number of random bytes must be an integer")
    if n < 0:
        raise BadParameters("the number of random bytes must not be negative")
    if n > MAX_RANDOM_BYTES:
        raise BadParameters(f"at most {MAX_RANDOM_BYTES} random bytes can be requested at once")
    return os.urandom(n)
