"""GetAttributes: all attributes, or those referenced, in the order asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.attribute_edit import full_view, select
from kms.core.context import RequestContext
from kms.kmip.payloads import GetAttributesRequest, GetAttributesResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def run(kms: Kms, req: GetAttributesRequest, ctx: RequestContext) -> GetAttributesResponse:
    mo = kms.load(ctx, req.unique_identifier)
    view = full_view(mo, ctx.now, kms.vendor)
    return GetAttributesResponse(unique_identifier=mo.uid, attributes=select(view, req.attribute_reference))
