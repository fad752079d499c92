"""RNGRetrieve: bytes from the server's CSPRNG."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.crypto_use import crypto_errors
from kms.crypto.rng import random_bytes
from kms.kmip.enums import ResultReason
from kms.kmip.errors import KmipError
from kms.kmip.payloads import RNGRetrieveRequest, RNGRetrieveResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def run(kms: Kms, req: RNGRetrieveRequest, ctx: RequestContext) -> RNGRetrieveResponse:
    if req.data_length <= 0:
        raise KmipError(ResultReason.InvalidField, "DataLength must be positive")
    with crypto_errors():
        return RNGRetrieveResponse(data=random_bytes(req.data_length))
