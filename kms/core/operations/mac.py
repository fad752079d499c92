"""MAC: HMAC with a key (one-shot or streamed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.crypto_use import crypto_errors, symmetric_key_for
from kms.core.lifecycle import usage_amount
from kms.crypto import mac as maclib
from kms.kmip.enums import CryptographicAlgorithm, CryptographicUsageMask, Operation
from kms.kmip.errors import KmipError
from kms.kmip.payloads import MACRequest, MACResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def run(kms: Kms, req: MACRequest, ctx: RequestContext) -> MACResponse:
    if req.correlation_value is not None:
        stream = kms.streams.get(req.correlation_value, Operation.MAC, ctx.user)
        try:
            with crypto_errors():
                stream.state.update(req.data or b"")  # type: ignore[attr-defined]
                if not req.final_indicator:
                    return MACResponse(unique_identifier=stream.uid, correlation_value=req.correlation_value)
                tag = stream.state.finalize()  # type: ignore[attr-defined]
        except KmipError:
            kms.streams.close(req.correlation_value)
            raise
        kms.streams.close(req.correlation_value)
        return MACResponse(unique_identifier=stream.uid, mac_data=tag)
    k = symmetric_key_for(
        kms,
        ctx,
        req.unique_identifier,
        CryptographicUsageMask.MACGenerate,
        req.cryptographic_parameters,
        protect=True,
        default_algorithm=CryptographicAlgorithm.HMACSHA256,
    )
    mo, key, algorithm, params = k.mo, k.key, k.algorithm, k.params
    kms.consume_usage(ctx, mo, usage_amount(mo.attributes, len(req.data or b"")))
    with crypto_errors():
        if req.init_indicator and not req.final_indicator:
            s = maclib.start_mac(key, algorithm, params)
            s.update(req.data or b"")
            token = kms.streams.open(Operation.MAC, mo.uid, ctx.user, s)
            return MACResponse(unique_identifier=mo.uid, correlation_value=token)
        tag = maclib.mac(key, algorithm, params, req.data or b"")
    return MACResponse(unique_identifier=mo.uid, mac_data=tag)
