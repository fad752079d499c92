"""KMIP over HTTP: POST /kmip/2_1 (JSON, bare operation or RequestMessage) and POST /kmip (JSON, binary, XML)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Response, current_app, request

from kms.core.kms import Kms
from kms.kmip import binary, json_codec, registry, xml_codec
from kms.kmip.errors import KmipError, invalid_message
from kms.kmip.json_codec import Dialect
from kms.kmip.registry import operation_of_pseudo_tag
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV
from kms.server.errors import bare_error, plain

log = logging.getLogger("kms.http")
bp = Blueprint("kmip", __name__)
JSON = "application/json"


def _kms() -> Kms:
    return current_app.extensions["kms"]


def _user() -> str:
    return current_app.extensions["kms_config"].default_username


def _json_response(item: TTLV, dialect: Dialect) -> Response:
    return Response(json_codec.dumps(item, dialect), status=200, content_type=JSON)


def _serve_json(body: bytes, dialect: Dialect) -> Response:
    kms = _kms()
    try:
        obj = json_codec.parse_json(body)
    except KmipError as exc:
        return bare_error(exc)
    is_message = isinstance(obj, dict) and obj.get("tag") == "RequestMessage"
    try:
        item = json_codec.from_json(obj)
    except KmipError as exc:
        # A RequestMessage always gets a ResponseMessage, even when part of it cannot be understood.
        return _json_response(kms.failure_message(exc), dialect) if is_message else bare_error(exc)
    if item.tag == Tag.RequestMessage:
        return _json_response(kms.handle_message(item, _user()), dialect)
    routed = operation_of_pseudo_tag(item.tag)
    if routed is None or routed[1]:
        return bare_error(
            invalid_message(f"expected a RequestMessage or an operation, got {registry.tag_name(item.tag)}")
        )
    try:
        return _json_response(kms.handle_bare(routed[0], item, _user()), dialect)
    except KmipError as exc:
        return bare_error(exc)


@bp.post("/kmip/2_1")
def kmip_2_1() -> Response:
    """Cosmian's endpoint: responses use the spellings the Cosmian clients parse (spec/kmip.md §6)."""
    return _serve_json(request.get_data(cache=False), Dialect.COSMIAN)


@bp.post("/kmip")
def kmip() -> Response:
    kind = (request.mimetype or "").lower()
    body = request.get_data(cache=False)
    if kind in ("application/octet-stream", "application/x-kmip", ""):
        return _serve_binary(body)
    if kind == JSON:
        return _serve_json(body, Dialect.OASIS)  # the KMIP JSON profile, OASIS names
    if kind in ("application/xml", "text/xml"):
        return _serve_xml(body)
    return plain(415, f"unsupported Content-Type {kind!r}: use application/json, application/octet-stream or XML")


def _serve_message(body: bytes, loads: Callable[[bytes], TTLV], dumps: Callable[[TTLV], bytes], kind: str) -> Response:
    """A RequestMessage in binary or XML: always answered with a ResponseMessage in the same encoding."""
    kms = _kms()
    try:
        item = loads(body)
        if item.tag != Tag.RequestMessage:
            raise invalid_message("the body must be a RequestMessage")
        out = kms.handle_message(item, _user())
    except KmipError as exc:
        out = kms.failure_message(exc)
    return Response(dumps(out), status=200, content_type=kind)


def _serve_binary(body: bytes) -> Response:
    return _serve_message(body, binary.decode, binary.encode, "application/octet-stream")


def _serve_xml(body: bytes) -> Response:
    return _serve_message(body, xml_codec.loads, lambda item: xml_codec.dumps(item).encode(), "application/xml")
