"""Create: generate a symmetric key or secret data on the server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.creation import check_quantum_safe, new_managed_object
from kms.crypto.errors import BadParameters
from kms.crypto.keys import generate_secret, generate_symmetric_key
from kms.kmip.enums import CryptographicAlgorithm, KeyFormatType, ObjectType, ResultReason, SecretDataType
from kms.kmip.errors import KmipError
from kms.kmip.objects import KeyBlock, SecretData, SymmetricKey
from kms.kmip.payloads import CreateRequest, CreateResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = True


def run(kms: Kms, req: CreateRequest, ctx: RequestContext) -> CreateResponse:
    a = req.attributes
    if req.object_type == ObjectType.SymmetricKey:
        alg = a.cryptographic_algorithm
        if alg is None:
            raise KmipError(ResultReason.InvalidField, "Create of a SymmetricKey needs a CryptographicAlgorithm")
        length = a.cryptographic_length
        if length is None:
            length = 256
            a.cryptographic_length = length
        check_quantum_safe(a)
        try:
            material = generate_symmetric_key(alg, length)
        except BadParameters as exc:
            raise KmipError(ResultReason.InvalidField, str(exc)) from None
        obj: object = SymmetricKey(KeyBlock.raw(material, alg, length, KeyFormatType.Raw))
    elif req.object_type == ObjectType.SecretData:
        length = a.cryptographic_length or 256
        if length <= 0 or length % 8 or length > 8 * 4096:
            raise KmipError(ResultReason.InvalidField, "secret data length must be a positive multiple of 8 bits")
        material = generate_secret(length // 8)
        obj = SecretData(SecretDataType.Seed, KeyBlock.raw(material, None, None, KeyFormatType.Opaque))
    else:
        raise KmipError(
            ResultReason.InvalidObjectType,
            f"Create makes SymmetricKey or SecretData objects, not {req.object_type.name}",
        )
    mo = new_managed_object(kms, ctx, req.object_type, obj, a, generated=True)
    if req.object_type == ObjectType.SymmetricKey and mo.attributes.cryptographic_usage_mask is None:
        mo.attributes.cryptographic_usage_mask = _default_mask(alg)
    kms.insert(ctx, mo)
    return CreateResponse(object_type=req.object_type, unique_identifier=mo.uid)


def _default_mask(alg: CryptographicAlgorithm) -> int:
    from kms.kmip.enums import CryptographicUsageMask as M

    if alg.name.startswith("HMAC"):
        return int(M.MACGenerate | M.MACVerify)
    return int(M.Encrypt | M.Decrypt | M.WrapKey | M.UnwrapKey)
