"""DeleteAttribute: remove one instance (CurrentAttribute) or every instance (AttributeReference)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core import attribute_edit
from kms.core.context import RequestContext
from kms.core.managed import copy_object
from kms.kmip.payloads import DeleteAttributeRequest, UidResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = True


def run(kms: Kms, req: DeleteAttributeRequest, ctx: RequestContext) -> UidResponse:
    mo = copy_object(kms.load(ctx, req.unique_identifier))
    current = req.current_attribute.item if req.current_attribute is not None else None
    attribute_edit.delete(mo, current, req.attribute_reference, ctx.now, kms.vendor)
    kms.save(ctx, mo)
    return UidResponse(unique_identifier=mo.uid)
