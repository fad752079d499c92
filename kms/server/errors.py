"""How failures leave the server: KMIP reasons for KMIP, plain text for bare operations, never a traceback."""

from __future__ import annotations

from flask import Response

from kms.kmip.enums import ResultReason
from kms.kmip.errors import KmipError

TEXT = "text/plain; charset=utf-8"

_PREFIX = {
    ResultReason.ItemNotFound: "Item not found",
    ResultReason.ObjectNotFound: "Item not found",
    ResultReason.InvalidMessage: "Invalid Request",
    ResultReason.PermissionDenied: "Access denied",
    ResultReason.OperationNotSupported: "Not Supported",
}


def error_text(exc: KmipError) -> str:
    """The display string of a bare-operation failure, as the Cosmian server words it."""
    prefix = _PREFIX.get(exc.reason, exc.reason.name)
    return f"{prefix}: {exc.message}"


def bare_error(exc: KmipError) -> Response:
    return Response(error_text(exc), status=422, mimetype="text/plain", content_type=TEXT)


def plain(status: int, text: str) -> Response:
    return Response(text, status=status, content_type=TEXT)
