"""AddAttribute: a new instance of an attribute (single-valued ones only if not yet set)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core import attribute_edit
from kms.core.context import RequestContext
from kms.core.managed import copy_object
from kms.kmip.payloads import AddAttributeRequest, UidResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = True


def run(kms: Kms, req: AddAttributeRequest, ctx: RequestContext) -> UidResponse:
    mo = copy_object(kms.load(ctx, req.unique_identifier))
    attribute_edit.add(mo, req.new_attribute.item, ctx.now, kms.vendor)
    kms.save(ctx, mo)
    return UidResponse(unique_identifier=mo.uid)
