"""Export: the object and its attributes, whatever its state (short of destroyed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.attribute_edit import full_view
from kms.core.context import RequestContext
from kms.core.operations.get import exported_object
from kms.kmip.payloads import ExportRequest, ExportResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def run(kms: Kms, req: ExportRequest, ctx: RequestContext) -> ExportResponse:
    mo = kms.load(ctx, req.unique_identifier)
    obj = exported_object(kms, mo, req, ctx)
    kms.mark_served(ctx, mo)
    return ExportResponse(
        object_type=mo.object_type,
        unique_identifier=mo.uid,
        attributes=full_view(mo, ctx.now, kms.vendor),
        object=obj,
    )
