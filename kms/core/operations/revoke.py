"""Revoke: Compromised for key/CA compromise, otherwise Deactivated (KMIP 2.1 §6.1.49)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.lifecycle import DESTROYED, effective_state
from kms.core.managed import copy_object
from kms.kmip.attributes import RevocationReason
from kms.kmip.enums import ResultReason, RevocationReasonCode, State
from kms.kmip.errors import KmipError
from kms.kmip.payloads import RevokeRequest, UidResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = True
_COMPROMISE = (RevocationReasonCode.KeyCompromise, RevocationReasonCode.CACompromise)


def run(kms: Kms, req: RevokeRequest, ctx: RequestContext) -> UidResponse:
    reason = req.revocation_reason
    if not isinstance(reason, RevocationReason):
        raise KmipError(ResultReason.InvalidField, "Revoke needs a RevocationReason")
    if reason.revocation_reason_code is None:
        reason.revocation_reason_code = RevocationReasonCode.Unspecified
    mo = copy_object(kms.load(ctx, req.unique_identifier, include_destroyed=False))
    a = mo.attributes
    state = effective_state(a, ctx.now)
    if state in DESTROYED:
        raise KmipError(ResultReason.ObjectDestroyed, f"object {mo.uid} has been destroyed")
    if reason.revocation_reason_code in _COMPROMISE:
        a.state = State.Compromised
        a.compromise_date = ctx.now
        a.compromise_occurrence_date = req.compromise_occurrence_date or ctx.now
    elif state != State.Compromised:
        a.state = State.Deactivated
        if a.deactivation_date is None or a.deactivation_date > ctx.now:
            a.deactivation_date = ctx.now
    a.revocation_reason = reason
    kms.save(ctx, mo)
    return UidResponse(unique_identifier=mo.uid)
