"""Query: what this server supports (operations, object types, server information)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.kmip.enums import ObjectType, QueryFunction
from kms.kmip.payloads import QueryRequest, QueryResponse, ServerInformation

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False
OBJECT_TYPES = [
    ObjectType.Certificate,
    ObjectType.SymmetricKey,
    ObjectType.SecretData,
    ObjectType.PublicKey,
    ObjectType.PrivateKey,
    ObjectType.OpaqueObject,
]


def run(kms: Kms, req: QueryRequest, ctx: RequestContext) -> QueryResponse:
    resp = QueryResponse()
    functions = set(req.query_function)
    if QueryFunction.QueryOperations in functions:
        resp.operation = sorted(kms.handlers)
    if QueryFunction.QueryObjects in functions:
        resp.object_type = list(OBJECT_TYPES)
    if QueryFunction.QueryServerInformation in functions:
        resp.vendor_identification = kms.identity.vendor_identification
        resp.server_information = ServerInformation(
            server_name=kms.identity.server_name, server_version=kms.identity.version
        )
    return resp
