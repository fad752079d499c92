"""Encrypt: one-shot or streamed (InitIndicator / CorrelationValue / FinalIndicator) with a symmetric key.

With no parameters an AES key encrypts with AES-GCM, a fresh random 96-bit nonce and a 128-bit tag. The nonce
is returned only when the server chose it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.crypto_use import check_stream_key, crypto_errors, symmetric_key_for
from kms.core.lifecycle import check_protect, usage_amount
from kms.crypto import symmetric
from kms.kmip.enums import CryptographicUsageMask, Operation
from kms.kmip.errors import KmipError
from kms.kmip.payloads import EncryptRequest, EncryptResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def run(kms: Kms, req: EncryptRequest, ctx: RequestContext) -> EncryptResponse:
    if req.correlation_value is not None:
        return _continue(kms, req, ctx)
    k = symmetric_key_for(
        kms, ctx, req.unique_identifier, CryptographicUsageMask.Encrypt, req.cryptographic_parameters, protect=True
    )
    mo, key, algorithm, params = k.mo, k.key, k.algorithm, k.params
    aad = req.authenticated_encryption_additional_data
    data = req.data if req.data is not None else b""
    kms.consume_usage(ctx, mo, usage_amount(mo.attributes, len(data)))
    with crypto_errors():
        if req.init_indicator and not req.final_indicator:
            stream, iv = symmetric.start_encrypt(key, algorithm, params, req.iv_counter_nonce, aad)
            out = stream.update(data)
            token = kms.streams.open(Operation.Encrypt, mo.uid, ctx.user, stream)
            return EncryptResponse(
                unique_identifier=mo.uid,
                data=out,
                iv_counter_nonce=iv if not req.iv_counter_nonce else None,
                correlation_value=token,
            )
        result = symmetric.encrypt(key, algorithm, params, data, req.iv_counter_nonce, aad)
    # The nonce goes back whenever the server chose it (no nonce, or an empty one, in the request).
    return EncryptResponse(
        unique_identifier=mo.uid,
        data=result.data,
        iv_counter_nonce=result.iv if not req.iv_counter_nonce else None,
        authenticated_encryption_tag=result.tag,
    )


def _continue(kms: Kms, req: EncryptRequest, ctx: RequestContext) -> EncryptResponse:
    stream = kms.streams.get(req.correlation_value, Operation.Encrypt, ctx.user)  # type: ignore[arg-type]
    check_stream_key(kms, ctx, stream.uid, req.unique_identifier)
    mo = kms.load(ctx, stream.uid, include_destroyed=False)  # the key may have been revoked meanwhile
    try:
        check_protect(mo.attributes, ctx.now, mo.uid)
        kms.consume_usage(ctx, mo, usage_amount(mo.attributes, len(req.data or b"")))
        with crypto_errors():
            out = stream.state.update(req.data or b"")  # type: ignore[attr-defined]
            if not req.final_indicator:
                return EncryptResponse(unique_identifier=mo.uid, data=out, correlation_value=req.correlation_value)
            rest, tag = stream.state.finalize()  # type: ignore[attr-defined]
    except KmipError:
        kms.streams.close(req.correlation_value)  # type: ignore[arg-type]
        raise
    kms.streams.close(req.correlation_value)  # type: ignore[arg-type]
    return EncryptResponse(unique_identifier=mo.uid, data=out + rest, authenticated_encryption_tag=tag)
