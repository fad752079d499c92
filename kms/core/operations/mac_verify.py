"""MACVerify: constant-time check of a MAC; the answer is a ValidityIndicator, not an error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.crypto_use import crypto_errors, symmetric_key_for
from kms.crypto import mac as maclib
from kms.kmip.enums import CryptographicAlgorithm, CryptographicUsageMask, Operation, ResultReason, ValidityIndicator
from kms.kmip.errors import KmipError
from kms.kmip.payloads import MACVerifyRequest, MACVerifyResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def _validity(ok: bool) -> ValidityIndicator:
    return ValidityIndicator.Valid if ok else ValidityIndicator.Invalid


def run(kms: Kms, req: MACVerifyRequest, ctx: RequestContext) -> MACVerifyResponse:
    if req.correlation_value is not None:
        stream = kms.streams.get(req.correlation_value, Operation.MACVerify, ctx.user)
        try:
            with crypto_errors():
                stream.state.update(req.data or b"")  # type: ignore[attr-defined]
                if not req.final_indicator:
                    return MACVerifyResponse(
                        unique_identifier=stream.uid,
                        validity_indicator=ValidityIndicator.Unknown,
                        correlation_value=req.correlation_value,
                    )
                if req.mac_data is None:
                    raise KmipError(ResultReason.InvalidField, "the final MACVerify call needs MACData")
                ok = stream.state.verify(req.mac_data)  # type: ignore[attr-defined]
        finally:
            if req.final_indicator:
                kms.streams.close(req.correlation_value)
        return MACVerifyResponse(unique_identifier=stream.uid, validity_indicator=_validity(ok))
    k = symmetric_key_for(
        kms,
        ctx,
        req.unique_identifier,
        CryptographicUsageMask.MACVerify,
        req.cryptographic_parameters,
        protect=False,
        default_algorithm=CryptographicAlgorithm.HMACSHA256,
    )
    mo, key, algorithm, params = k.mo, k.key, k.algorithm, k.params
    with crypto_errors():
        if req.init_indicator and not req.final_indicator:
            s = maclib.start_mac(key, algorithm, params)
            s.update(req.data or b"")
            token = kms.streams.open(Operation.MACVerify, mo.uid, ctx.user, s)
            return MACVerifyResponse(
                unique_identifier=mo.uid, validity_indicator=ValidityIndicator.Unknown, correlation_value=token
            )
        if req.mac_data is None:
            raise KmipError(ResultReason.InvalidField, "MACVerify needs MACData")
        ok = maclib.mac_verify(key, algorithm, params, req.data or b"", req.mac_data)
    return MACVerifyResponse(unique_identifier=mo.uid, validity_indicator=_validity(ok))
