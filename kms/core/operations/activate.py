"""Activate: Pre-Active -> Active."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.lifecycle import DESTROYED, denied, effective_state
from kms.core.managed import copy_object
from kms.kmip.enums import ResultReason, State
from kms.kmip.errors import KmipError
from kms.kmip.payloads import UidRequest, UidResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = True


def run(kms: Kms, req: UidRequest, ctx: RequestContext) -> UidResponse:
    mo = copy_object(kms.load(ctx, req.unique_identifier))
    state = effective_state(mo.attributes, ctx.now)
    if state in DESTROYED:
        raise KmipError(ResultReason.ObjectDestroyed, f"object {mo.uid} has been destroyed")
    if state != State.PreActive:
        raise denied(f"object {mo.uid} is {state.name}; only a PreActive object can be activated")
    mo.attributes.state = State.Active
    mo.attributes.activation_date = ctx.now
    kms.save(ctx, mo)
    return UidResponse(unique_identifier=mo.uid)
