"""Get: the managed object, in clear only when its attributes allow it (not Sensitive, Extractable)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.lifecycle import DESTROYED, check_not_destroyed, effective_state
from kms.core.managed import ManagedObject
from kms.core.material import with_format
from kms.kmip import schema
from kms.kmip.attributes import Attributes
from kms.kmip.enums import KeyFormatType, ObjectType, ResultReason, State
from kms.kmip.errors import KmipError
from kms.kmip.objects import OBJECT_CLASSES
from kms.kmip.payloads import GetRequest, GetResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def exported_object(kms: Kms, mo: ManagedObject, req: GetRequest, ctx: RequestContext) -> object:
    """The object as it may leave the server for this request, or a KmipError saying why it may not."""
    check_not_destroyed(mo.attributes, ctx.now, mo.uid)
    if req.key_wrapping_specification is not None:
        raise KmipError(ResultReason.FeatureNotSupported, "key wrapping on Get/Export is not available yet")
    kb = getattr(mo.obj, "key_block", None)
    if kb is None:
        if req.key_format_type is not None:
            raise KmipError(ResultReason.KeyFormatTypeNotSupported, f"{mo.object_type.name} has no key format")
        return mo.obj
    a = mo.attributes
    if a.sensitive:
        raise KmipError(ResultReason.Sensitive, f"object {mo.uid} is sensitive and cannot leave in clear")
    if a.extractable is False:
        raise KmipError(ResultReason.NotExtractable, f"object {mo.uid} is not extractable")
    wanted = req.key_format_type
    key_attrs = _key_value_attributes(a) if ctx.cosmian_dialect else None
    if mo.object_type == ObjectType.SymmetricKey:
        new_kb = with_format(kb, wanted, key_attrs)
    elif wanted is not None and wanted != kb.key_format_type:
        raise KmipError(
            ResultReason.KeyFormatTypeNotSupported,
            f"{mo.object_type.name} {mo.uid} is stored as {kb.key_format_type.name}; conversion to {wanted.name} "
            "is not available",
        )
    else:
        new_kb = kb
    if new_kb is kb:
        return mo.obj
    obj = schema.decode(OBJECT_CLASSES[mo.object_type], schema.encode(mo.obj))
    obj.key_block = new_kb  # type: ignore[attr-defined]
    return obj


def _key_value_attributes(a: Attributes) -> Attributes:
    # The Cosmian clients read the key's attributes inside KeyValue; give the essentials.
    return Attributes(
        cryptographic_algorithm=a.cryptographic_algorithm,
        cryptographic_length=a.cryptographic_length,
        cryptographic_usage_mask=a.cryptographic_usage_mask,
        key_format_type=KeyFormatType.Raw,
        object_type=a.object_type,
    )


def run(kms: Kms, req: GetRequest, ctx: RequestContext) -> GetResponse:
    mo = kms.load(ctx, req.unique_identifier)
    if ctx.cosmian_dialect:
        # The Cosmian API serves only Active objects through Get; any other state needs Export.
        state = effective_state(mo.attributes, ctx.now)
        if state not in DESTROYED and state != State.Active:
            raise KmipError(
                ResultReason.WrongKeyLifecycleState,
                f"object {mo.uid} is {state.name}: Get serves Active objects only; use Export",
            )
    obj = exported_object(kms, mo, req, ctx)
    kms.mark_served(ctx, mo)
    return GetResponse(object_type=mo.object_type, unique_identifier=mo.uid, object=obj)
