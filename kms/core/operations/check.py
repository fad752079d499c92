"""Check: would the object allow this usage (mask), this many uses, this lease?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.lifecycle import check_not_destroyed
from kms.kmip.enums import ResultReason
from kms.kmip.errors import KmipError
from kms.kmip.payloads import CheckRequest, CheckResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def run(kms: Kms, req: CheckRequest, ctx: RequestContext) -> CheckResponse:
    mo = kms.load(ctx, req.unique_identifier)
    a = mo.attributes
    check_not_destroyed(a, ctx.now, mo.uid)
    if req.cryptographic_usage_mask is not None:
        mask = a.cryptographic_usage_mask or 0
        if mask & req.cryptographic_usage_mask != req.cryptographic_usage_mask:
            raise KmipError(ResultReason.IncompatibleCryptographicUsageMask, "the object does not allow this usage")
    if req.usage_limits_count is not None and a.usage_limits is not None:
        left = a.usage_limits.usage_limits_count
        if left is not None and req.usage_limits_count > left:
            raise KmipError(ResultReason.UsageLimitExceeded, "the usage limit would be exceeded")
    if req.lease_time is not None and a.lease_time is not None and req.lease_time > a.lease_time:
        raise KmipError(ResultReason.PermissionDenied, "the lease time is longer than allowed")
    return CheckResponse(unique_identifier=mo.uid)
