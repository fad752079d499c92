"""DiscoverVersions: the protocol versions we speak, best first, filtered by the client's list if given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.kmip.payloads import DiscoverVersionsRequest, DiscoverVersionsResponse, ProtocolVersion

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False


def run(kms: Kms, req: DiscoverVersionsRequest, ctx: RequestContext) -> DiscoverVersionsResponse:
    from kms.core.kms import SUPPORTED_VERSIONS

    ours = [ProtocolVersion(major, minor) for major, minor in SUPPORTED_VERSIONS]
    if req.protocol_version:
        wanted = {(v.protocol_version_major, v.protocol_version_minor) for v in req.protocol_version}
        ours = [v for v in ours if (v.protocol_version_major, v.protocol_version_minor) in wanted]
    return DiscoverVersionsResponse(protocol_version=ours)
