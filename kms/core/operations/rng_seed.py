"""RNGSeed: mix client-supplied bytes into the operating system's entropy pool.

Writing to /dev/urandom stirs the bytes into the kernel pool without crediting any entropy, so a client can
add unpredictability but never weaken or control the generator. The response says how many bytes were used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.kmip.enums import ResultReason
from kms.kmip.errors import KmipError
from kms.kmip.payloads import RNGSeedRequest, RNGSeedResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False
MAX_SEED = 4096
log = logging.getLogger("kms.rng")


def run(kms: Kms, req: RNGSeedRequest, ctx: RequestContext) -> RNGSeedResponse:
    if len(req.data) > MAX_SEED:
        raise KmipError(ResultReason.InvalidField, f"seed data is limited to {MAX_SEED} bytes")
    try:
        with open("/dev/urandom", "wb") as pool:
            pool.write(req.data)
    except OSError:
        log.warning("could not write seed data to /dev/urandom")
        return RNGSeedResponse(data_length=0)
    return RNGSeedResponse(data_length=len(req.data))
