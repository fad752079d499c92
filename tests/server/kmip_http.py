"""A small KMIP-over-HTTP client for the server tests.

Requests and responses are handled in the JSON TTLV form (`{"tag", "type", "value"}` dicts) whatever the wire
encoding: bare operations go to POST /kmip/2_1 as JSON; RequestMessages go either as JSON to /kmip/2_1 or as
binary TTLV to POST /kmip (converted with the product codecs, which tests/kmip checks on their own).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import requests

from kms.kmip import binary, json_codec
from kms.kmip.json_codec import Dialect

JsonItem = dict[str, Any]
TEXT_PLAIN = "text/plain"
TIMEOUT = 60


# ------------------------------------------------------------------------------------------------ builders


def item(tag: str, type_: str, value: Any) -> JsonItem:
    return {"tag": tag, "type": type_, "value": value}


def struct(tag: str, *children: JsonItem | None) -> JsonItem:
    return {"tag": tag, "type": "Structure", "value": [c for c in children if c is not None]}


def text(tag: str, value: str) -> JsonItem:
    return item(tag, "TextString", value)


def byte_string(tag: str, value: bytes) -> JsonItem:
    return item(tag, "ByteString", value.hex().upper())


def enum(tag: str, value: str | int) -> JsonItem:
    return item(tag, "Enumeration", value)


def integer(tag: str, value: int | str) -> JsonItem:
    return item(tag, "Integer", value)


def boolean(tag: str, value: bool) -> JsonItem:
    return item(tag, "Boolean", value)


def date_time(tag: str, seconds: int) -> JsonItem:
    return item(tag, "DateTime", f"0x{seconds:016X}")


def uid(value: str) -> JsonItem:
    return text("UniqueIdentifier", value)


def unique_tag(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def tags_id(*tags: str) -> str:
    """A UniqueIdentifier made of tags, as the Cosmian clients write it: '["t1"]'."""
    return "[" + ",".join(f'"{t}"' for t in tags) + "]"


def tag_attribute(*tags: str) -> JsonItem:
    """The v5 form of the Cosmian `tag` vendor attribute."""
    return struct(
        "Attribute",
        text("VendorIdentification", "cosmian"),
        text("AttributeName", "tag"),
        text("AttributeValue", tags_id(*tags)),
    )


def vendor_attribute(name: str, value: JsonItem, vendor: str = "cosmian") -> JsonItem:
    return struct(
        "Attribute",
        text("VendorIdentification", vendor),
        text("AttributeName", name),
        {**value, "tag": "AttributeValue"},
    )


def aes_attributes(*extra: JsonItem | None, length: int = 256, mask: int = 12) -> JsonItem:
    return struct(
        "Attributes",
        enum("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", length),
        integer("CryptographicUsageMask", mask),
        *extra,
    )


def create_aes(*extra: JsonItem | None, length: int = 256, mask: int = 12, tag: str = "Create") -> JsonItem:
    return struct(tag, enum("ObjectType", "SymmetricKey"), aes_attributes(*extra, length=length, mask=mask))


def raw_key_block(material: bytes, algorithm: str = "AES") -> JsonItem:
    return struct(
        "KeyBlock",
        enum("KeyFormatType", "Raw"),
        struct("KeyValue", byte_string("KeyMaterial", material)),
        enum("CryptographicAlgorithm", algorithm),
        integer("CryptographicLength", len(material) * 8),
    )


# ------------------------------------------------------------------------------------------------ readers


def children(it: JsonItem, tag: str) -> list[JsonItem]:
    return [c for c in it.get("value") or [] if c["tag"] == tag]


def child(it: JsonItem, tag: str) -> JsonItem:
    found = children(it, tag)
    assert found, f"{it['tag']} has no {tag}: {it}"
    return found[0]


def has(it: JsonItem, tag: str) -> bool:
    return bool(children(it, tag))


def value(it: JsonItem, tag: str) -> Any:
    return child(it, tag)["value"]


def values(it: JsonItem, tag: str) -> list[Any]:
    return [c["value"] for c in children(it, tag)]


def find_deep(it: JsonItem, tag: str) -> list[JsonItem]:
    out = [it] if it["tag"] == tag else []
    if it.get("type", "Structure") == "Structure":
        for c in it.get("value") or []:
            out.extend(find_deep(c, tag))
    return out


def assert_key_order(it: JsonItem) -> None:
    """Every emitted item has exactly the keys tag, type, value, in that order."""
    assert list(it.keys()) == ["tag", "type", "value"], it
    if it["type"] == "Structure":
        for c in it["value"]:
            assert_key_order(c)


# ------------------------------------------------------------------------------------------------ messages


def batch_item(operation: str, *payload: JsonItem | None, batch_id: bytes | None = None) -> JsonItem:
    return struct(
        "BatchItem",
        enum("Operation", operation),
        byte_string("UniqueBatchItemID", batch_id) if batch_id is not None else None,
        struct("RequestPayload", *payload),
    )


def request_message(*items: JsonItem, header: Iterable[JsonItem] = (), version: tuple[int, int] = (2, 1)) -> JsonItem:
    return struct(
        "RequestMessage",
        struct(
            "RequestHeader",
            struct(
                "ProtocolVersion",
                integer("ProtocolVersionMajor", version[0]),
                integer("ProtocolVersionMinor", version[1]),
            ),
            *header,
            integer("BatchCount", len(items)),
        ),
        *items,
    )


def to_binary(message: JsonItem) -> bytes:
    return binary.encode(json_codec.from_json(message))


def from_binary(data: bytes) -> JsonItem:
    return json_codec.to_json(binary.decode(data), Dialect.OASIS)


def result(bi: JsonItem) -> tuple[str, str | None, str | None]:
    """(ResultStatus, ResultReason, ResultMessage) of a response batch item."""
    reason = value(bi, "ResultReason") if has(bi, "ResultReason") else None
    message = value(bi, "ResultMessage") if has(bi, "ResultMessage") else None
    return value(bi, "ResultStatus"), reason, message


def payload(bi: JsonItem) -> JsonItem:
    assert value(bi, "ResultStatus") == "Success", result(bi)
    return child(bi, "ResponsePayload")


class Kmip:
    """One server: bare JSON operations on /kmip/2_1 and RequestMessages on /kmip (binary) or /kmip/2_1."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    # bare operations -----------------------------------------------------------------------------------

    def post_bare(self, body: JsonItem | bytes | str) -> requests.Response:
        if isinstance(body, dict):
            return self.http.post(f"{self.url}/kmip/2_1", json=body, timeout=TIMEOUT)
        return self.http.post(
            f"{self.url}/kmip/2_1", data=body, headers={"Content-Type": "application/json"}, timeout=TIMEOUT
        )

    def call(self, body: JsonItem | bytes | str) -> JsonItem:
        r = self.post_bare(body)
        assert r.status_code == 200, (r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("application/json"), r.headers
        out = r.json()
        assert_key_order(out)
        return out

    def fail(self, body: JsonItem | bytes | str) -> str:
        """A bare operation that must be refused with HTTP 422 and a plain-text reason; returns that text."""
        r = self.post_bare(body)
        assert r.status_code == 422, (r.status_code, r.text)
        assert r.headers["Content-Type"].startswith(TEXT_PLAIN), r.headers
        assert "Traceback" not in r.text and 'File "' not in r.text, r.text
        assert r.text.strip(), "empty error body"
        return r.text

    # messages ------------------------------------------------------------------------------------------

    def post_binary(self, data: bytes, content_type: str = "application/octet-stream") -> requests.Response:
        return self.http.post(f"{self.url}/kmip", data=data, headers={"Content-Type": content_type}, timeout=TIMEOUT)

    def message_raw(self, data: bytes) -> JsonItem:
        r = self.post_binary(data)
        assert r.status_code == 200, (r.status_code, r.text)
        assert r.headers["Content-Type"] == "application/octet-stream", r.headers
        return from_binary(r.content)

    def message(self, message: JsonItem, *, json: bool = False) -> JsonItem:
        """Send a RequestMessage (binary on /kmip, or JSON on /kmip/2_1); the ResponseMessage as JSON TTLV."""
        out = self.call(message) if json else self.message_raw(to_binary(message))
        assert out["tag"] == "ResponseMessage", out
        return out

    def batch(self, *items: JsonItem, header: Iterable[JsonItem] = (), json: bool = False) -> list[JsonItem]:
        out = self.message(request_message(*items, header=header), json=json)
        return children(out, "BatchItem")

    def op(self, operation: str, *payload_items: JsonItem | None, json: bool = False) -> JsonItem:
        """One successful operation in a RequestMessage; its ResponsePayload."""
        (bi,) = self.batch(batch_item(operation, *payload_items), json=json)
        return payload(bi)

    def op_fails(self, operation: str, *payload_items: JsonItem | None, json: bool = False) -> tuple[str, str]:
        """One operation that must fail; (ResultReason, ResultMessage)."""
        (bi,) = self.batch(batch_item(operation, *payload_items), json=json)
        status, reason, message = result(bi)
        assert status == "OperationFailed", bi
        assert reason is not None and message is not None, bi
        assert "Traceback" not in message, message
        return reason, message

    # common steps --------------------------------------------------------------------------------------

    def create_bare(self, *tags: str, extra: Iterable[JsonItem] = ()) -> str:
        body = create_aes(tag_attribute(*tags) if tags else None, *extra, mask=2108)
        return value(self.call(body), "UniqueIdentifier")

    def create(self, *extra: JsonItem | None, length: int = 256, mask: int = 12) -> str:
        resp = self.op("Create", *create_aes(*extra, length=length, mask=mask)["value"])
        return value(resp, "UniqueIdentifier")

    def attributes(self, object_id: str, *references: str) -> JsonItem:
        refs = [enum("AttributeReference", r) for r in references]
        return child(self.op("GetAttributes", uid(object_id), *refs), "Attributes")

    def state(self, object_id: str) -> str:
        return value(self.attributes(object_id, "State"), "State")

    def locate(self, *attrs: JsonItem, maximum: int | None = None, offset: int | None = None) -> list[str]:
        resp = self.op(
            "Locate",
            integer("MaximumItems", maximum) if maximum is not None else None,
            integer("OffsetItems", offset) if offset is not None else None,
            struct("Attributes", *attrs),
        )
        return values(resp, "UniqueIdentifier")

    def locate_tag(self, *tags: str) -> list[str]:
        return self.locate(tag_attribute(*tags))

    def count_all(self) -> int:
        """Number of (non-destroyed) objects on the server, from Locate's LocatedItems."""
        return value(self.op("Locate", struct("Attributes")), "LocatedItems")
