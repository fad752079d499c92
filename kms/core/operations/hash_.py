"""Hash: a digest of the data (no key involved)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.crypto_use import crypto_errors
from kms.crypto import hashing
from kms.kmip.enums import Operation, ResultReason
from kms.kmip.errors import KmipError
from kms.kmip.payloads import HashRequest, HashResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False
_HASH_OWNER = "-"  # streams of Hash are bound to the user but to no object


def run(kms: Kms, req: HashRequest, ctx: RequestContext) -> HashResponse:
    if req.correlation_value is not None:
        stream = kms.streams.get(req.correlation_value, Operation.Hash, ctx.user)
        with crypto_errors():
            stream.state.update(req.data or b"")  # type: ignore[attr-defined]
            if not req.final_indicator:
                return HashResponse(correlation_value=req.correlation_value)
            kms.streams.close(req.correlation_value)
            return HashResponse(data=stream.state.finalize())  # type: ignore[attr-defined]
    p = req.cryptographic_parameters
    algorithm = p.hashing_algorithm or p.cryptographic_algorithm
    if algorithm is None:
        raise KmipError(ResultReason.InvalidField, "Hash needs a HashingAlgorithm in CryptographicParameters")
    with crypto_errors():
        if req.init_indicator and not req.final_indicator:
            s = hashing.start_hash(algorithm)
            s.update(req.data or b"")
            token = kms.streams.open(Operation.Hash, _HASH_OWNER, ctx.user, s)
            return HashResponse(correlation_value=token)
        return HashResponse(data=hashing.digest(algorithm, req.data or b""))
