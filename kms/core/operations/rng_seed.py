"""RNGSeed: the server draws from the operating system CSPRNG, which clients cannot seed; nothing is accepted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.kmip.payloads import RNGSeedRequest, RNGSeedResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def run(kms: Kms, req: RNGSeedRequest, ctx: RequestContext) -> RNGSeedResponse:
    # DataLength is the number of seed bytes the server used: none. A client cannot weaken our RNG.
    return RNGSeedResponse(data_length=0)
