"""ModifyAttribute: change the value of an existing attribute (instance chosen by CurrentAttribute)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core import attribute_edit
from kms.core.context import RequestContext
from kms.core.managed import copy_object
from kms.kmip.payloads import ModifyAttributeRequest, UidResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = True


def run(kms: Kms, req: ModifyAttributeRequest, ctx: RequestContext) -> UidResponse:
    mo = copy_object(kms.load(ctx, req.unique_identifier))
    current = req.current_attribute.item if req.current_attribute is not None else None
    attribute_edit.modify(mo, current, req.new_attribute.item, ctx.now, kms.vendor)
    kms.save(ctx, mo)
    return UidResponse(unique_identifier=mo.uid)
