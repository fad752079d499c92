"""Import: register an object under a caller-chosen identifier, optionally replacing an existing one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.creation import new_managed_object
from kms.core.operations.register import check_object
from kms.kmip.attributes import Attributes
from kms.kmip.enums import ResultReason
from kms.kmip.errors import KmipError
from kms.kmip.payloads import ImportRequest, ImportResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = True


def run(kms: Kms, req: ImportRequest, ctx: RequestContext) -> ImportResponse:
    check_object(req.object_type, req.object)
    attributes = req.attributes or Attributes()
    uid = req.unique_identifier or kms.new_uid()
    attributes.unique_identifier = uid
    existing = ctx.session.get(uid)
    if existing is not None:
        if not req.replace_existing:
            raise KmipError(ResultReason.ObjectAlreadyExists, f"object {uid} exists; set ReplaceExisting to replace it")
        if existing.owner != ctx.user:
            raise KmipError(ResultReason.PermissionDenied, f"object {uid} belongs to another user")
        ctx.session.delete(uid)
        ctx.touched.add(uid)
        ctx.scrub = True
    mo = new_managed_object(kms, ctx, req.object_type, req.object, attributes)
    kms.insert(ctx, mo)
    return ImportResponse(unique_identifier=mo.uid)
