"""SetAttribute: create or replace a single-valued attribute."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core import attribute_edit
from kms.core.context import RequestContext
from kms.core.managed import copy_object
from kms.kmip.payloads import SetAttributeRequest, UidResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = True


def run(kms: Kms, req: SetAttributeRequest, ctx: RequestContext) -> UidResponse:
    mo = copy_object(kms.load(ctx, req.unique_identifier))
    attribute_edit.set_(mo, req.new_attribute.item, ctx.now, kms.vendor)
    kms.save(ctx, mo)
    return UidResponse(unique_identifier=mo.uid)
