"""Register: store an object the client supplies (key, secret, certificate, opaque data)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.creation import new_managed_object
from kms.core.material import RAW_FORMATS
from kms.crypto.errors import BadParameters
from kms.crypto.keys import validate_symmetric_key
from kms.kmip.enums import ObjectType, ResultReason
from kms.kmip.errors import KmipError
from kms.kmip.objects import OBJECT_CLASSES
from kms.kmip.payloads import RegisterRequest, RegisterResponse
from kms.kmip.ttlv import ItemType

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = True


def check_object(object_type: ObjectType, obj: object) -> None:
    """Refuse material that cannot be what it claims to be, before anything is stored."""
    if not isinstance(obj, OBJECT_CLASSES[object_type]):
        raise KmipError(ResultReason.InvalidField, f"ObjectType is {object_type.name} but the object is not")
    kb = getattr(obj, "key_block", None)
    if object_type != ObjectType.SymmetricKey or kb is None or kb.key_value is None:
        return
    plain = kb.key_wrapping_data is None and kb.key_value.type is ItemType.Structure
    if plain and kb.key_format_type in RAW_FORMATS and kb.cryptographic_algorithm is not None:
        try:
            validate_symmetric_key(kb.cryptographic_algorithm, kb.value().material_bytes(), kb.cryptographic_length)
        except BadParameters as exc:
            raise KmipError(ResultReason.InvalidField, str(exc)) from None


def run(kms: Kms, req: RegisterRequest, ctx: RequestContext) -> RegisterResponse:
    check_object(req.object_type, req.object)
    mo = new_managed_object(kms, ctx, req.object_type, req.object, req.attributes)
    kms.insert(ctx, mo)
    return RegisterResponse(unique_identifier=mo.uid)
