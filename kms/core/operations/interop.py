"""Interop: test-harness markers (Begin/End/Reset) used by the OASIS Baseline test cases."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.kmip.payloads import EmptyResponse, InteropRequest

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False
log = logging.getLogger("kms.interop")


def run(kms: Kms, req: InteropRequest, ctx: RequestContext) -> EmptyResponse:
    log.info("interop %s %s", req.interop_function.name, (req.interop_identifier or "")[:128])
    return EmptyResponse()
