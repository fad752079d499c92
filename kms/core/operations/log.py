"""Log: record a client-supplied message in the server log (truncated; it is client text, not ours)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.kmip.payloads import EmptyResponse, LogRequest

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False
log = logging.getLogger("kms.client_log")


def run(kms: Kms, req: LogRequest, ctx: RequestContext) -> EmptyResponse:
    log.info("client %s: %r", ctx.user, req.log_message[:512])
    return EmptyResponse()
