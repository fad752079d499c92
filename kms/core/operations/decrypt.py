"""Decrypt: one-shot or streamed; allowed with Active, Deactivated and Compromised keys (KMIP processing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.crypto_use import check_stream_key, crypto_errors, symmetric_key_for
from kms.core.lifecycle import check_process
from kms.crypto import symmetric
from kms.kmip.enums import CryptographicUsageMask, Operation
from kms.kmip.errors import KmipError
from kms.kmip.payloads import DecryptRequest, DecryptResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def run(kms: Kms, req: DecryptRequest, ctx: RequestContext) -> DecryptResponse:
    if req.correlation_value is not None:
        return _continue(kms, req, ctx)
    k = symmetric_key_for(
        kms, ctx, req.unique_identifier, CryptographicUsageMask.Decrypt, req.cryptographic_parameters, protect=False
    )
    mo, key, algorithm, params = k.mo, k.key, k.algorithm, k.params
    aad = req.authenticated_encryption_additional_data
    data = req.data if req.data is not None else b""
    with crypto_errors():
        if req.init_indicator and not req.final_indicator:
            # Streamed plaintext is released chunk by chunk (the server cannot hold a large file); the final call's
            # tag check decides, and clients must discard the output if it fails (ckms writes to a temp file).
            stream = symmetric.start_decrypt(
                key, algorithm, params, req.iv_counter_nonce, aad, release_unverified=True
            )
            out = stream.update(data)
            token = kms.streams.open(Operation.Decrypt, mo.uid, ctx.user, stream)
            return DecryptResponse(unique_identifier=mo.uid, data=out, correlation_value=token)
        plain = symmetric.decrypt(
            key, algorithm, params, data, req.iv_counter_nonce, aad, req.authenticated_encryption_tag
        )
    return DecryptResponse(unique_identifier=mo.uid, data=plain)


def _continue(kms: Kms, req: DecryptRequest, ctx: RequestContext) -> DecryptResponse:
    stream = kms.streams.get(req.correlation_value, Operation.Decrypt, ctx.user)  # type: ignore[arg-type]
    check_stream_key(kms, ctx, stream.uid, req.unique_identifier)
    mo = kms.load(ctx, stream.uid, include_destroyed=False)
    try:
        check_process(mo.attributes, ctx.now, mo.uid)
        with crypto_errors():
            out = stream.state.update(req.data or b"")  # type: ignore[attr-defined]
            if not req.final_indicator:
                return DecryptResponse(unique_identifier=mo.uid, data=out, correlation_value=req.correlation_value)
            rest, _ = stream.state.finalize(req.authenticated_encryption_tag)  # type: ignore[attr-defined]
    except KmipError:
        kms.streams.close(req.correlation_value)  # type: ignore[arg-type]
        raise
    kms.streams.close(req.correlation_value)  # type: ignore[arg-type]
    return DecryptResponse(unique_identifier=mo.uid, data=out + rest)
