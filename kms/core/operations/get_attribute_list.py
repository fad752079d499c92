"""GetAttributeList: references to every attribute the object has."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.attribute_edit import full_view, reference_list
from kms.core.context import RequestContext
from kms.kmip.payloads import GetAttributeListResponse, UidRequest

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def run(kms: Kms, req: UidRequest, ctx: RequestContext) -> GetAttributeListResponse:
    mo = kms.load(ctx, req.unique_identifier)
    refs = reference_list(full_view(mo, ctx.now, kms.vendor))
    return GetAttributeListResponse(unique_identifier=mo.uid, attribute_reference=refs)
