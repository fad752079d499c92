"""Bad input gets a clear error, changes nothing, and the server keeps serving.

Bare operations on /kmip/2_1 fail with HTTP 422 and a plain-text reason (never 500, never a traceback).
RequestMessages (JSON on /kmip/2_1, binary on /kmip) fail inside the ResponseMessage: HTTP 200, BatchItem
OperationFailed with the KMIP ResultReason. After every bad request the whole object store (every object's
attributes, destroyed ones included) is compared with a snapshot taken before, and a good request must work.
This module runs its own server so that the snapshot covers everything on it.
"""

from __future__ import annotations

import hashlib
import json
import struct as binary_struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests

from kms.kmip import binary, json_codec
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType
from tests.server.kmip_http import (
    JsonItem,
    Kmip,
    aes_attributes,
    batch_item,
    byte_string,
    child,
    children,
    create_aes,
    date_time,
    enum,
    integer,
    item,
    request_message,
    result,
    struct,
    text,
    to_binary,
    uid,
    unique_tag,
    value,
    values,
)
from tests.support.backends import SERVER_BACKENDS
from tests.support.server import ServerProcess

MAX_BODY = 256 * 1024


@dataclass
class World:
    """Objects in every state the error cases need."""

    active: str
    active_tag: str
    revoked: str
    destroyed: str
    secret: str
    secret_aes: str
    shared_tag: str  # two objects carry it
    ciphertext: bytes
    nonce: bytes
    auth_tag: bytes


@pytest.fixture(scope="module", params=list(SERVER_BACKENDS))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    database = SERVER_BACKENDS[request.param]("errors")
    data = tmp_path_factory.mktemp("errors-data")
    proc = ServerProcess(data, "--max-request-bytes", str(MAX_BODY), database=database)
    proc.start()
    yield proc
    proc.stop()
    database.drop()


@pytest.fixture(scope="module")
def kmip(server: ServerProcess) -> Kmip:
    return Kmip(server.url)


def _register_secret(kmip: Kmip, *attributes: JsonItem, material: bytes) -> str:
    body = struct(
        "Register",
        enum("ObjectType", "SecretData"),
        struct("Attributes", integer("CryptographicUsageMask", 12), *attributes),
        struct(
            "SecretData",
            enum("SecretDataType", "Password"),
            struct(
                "KeyBlock", enum("KeyFormatType", "Opaque"), struct("KeyValue", byte_string("KeyMaterial", material))
            ),
        ),
    )
    return value(kmip.call(body), "UniqueIdentifier")


@pytest.fixture(scope="module")
def world(kmip: Kmip) -> World:
    active_tag = unique_tag("active")
    active = kmip.create_bare(active_tag)
    enc = kmip.call(struct("Encrypt", uid(active), byte_string("Data", b"attack at dawn")))
    revoked = kmip.create_bare(unique_tag())
    kmip.call(struct("Revoke", uid(revoked), text("RevocationReason", "gone")))
    destroyed = kmip.create_bare(unique_tag())
    kmip.call(struct("Revoke", uid(destroyed), text("RevocationReason", "gone")))
    kmip.call(struct("Destroy", uid(destroyed)))
    shared = unique_tag("shared")
    kmip.create_bare(shared)
    kmip.create_bare(shared)
    return World(
        active=active,
        active_tag=active_tag,
        revoked=revoked,
        destroyed=destroyed,
        secret=_register_secret(kmip, material=b"correct horse battery staple"),
        secret_aes=_register_secret(
            kmip,
            enum("CryptographicAlgorithm", "AES"),
            integer("CryptographicLength", 256),
            material=b"p" * 32,
        ),
        shared_tag=shared,
        ciphertext=bytes.fromhex(value(enc, "Data")),
        nonce=bytes.fromhex(value(enc, "IvCounterNonce")),
        auth_tag=bytes.fromhex(value(enc, "AuthenticatedEncryptionTag")),
    )


def snapshot(kmip: Kmip) -> dict[str, JsonItem]:
    """Every object on the server (destroyed too) with all its attributes."""
    ids = kmip.locate()
    for state in ("Destroyed", "DestroyedCompromised"):
        ids += kmip.locate(enum("State", state))
    assert len(ids) == len(set(ids))
    return {i: kmip.attributes(i) for i in ids}


def still_serving(kmip: Kmip, w: World) -> None:
    """A good request right after the bad one works (and is read-only, so snapshots stay comparable)."""
    dec = kmip.call(
        struct(
            "Decrypt",
            uid(w.active),
            byte_string("Data", w.ciphertext),
            byte_string("IvCounterNonce", w.nonce),
            byte_string("AuthenticatedEncryptionTag", w.auth_tag),
        )
    )
    assert bytes.fromhex(value(dec, "Data")) == b"attack at dawn"
    r = kmip.http.get(f"{kmip.url}/version", timeout=30)
    assert r.status_code == 200


@pytest.fixture
def unchanged(kmip: Kmip, world: World) -> Iterator[None]:
    before = snapshot(kmip)
    assert len(before) >= 7
    yield
    assert snapshot(kmip) == before
    still_serving(kmip, world)


# ------------------------------------------------------------------------------------------ bare, 422


BareCase = Callable[[World], JsonItem | str | bytes]

BARE_CASES: dict[str, tuple[BareCase, list[str]]] = {
    "malformed JSON": (lambda w: '{"tag":"Encrypt","value":[', ["malformed JSON"]),
    "not JSON at all": (lambda w: b"\x00\x01binary", ["Invalid"]),
    "JSON but not an item": (lambda w: "[1, 2, 3]", ["JSON object"]),
    "unknown tag": (lambda w: struct("Encrypt", uid(w.active), text("NoSuchTag", "x")), ["NoSuchTag"]),
    "unknown operation": (lambda w: struct("Frobnicate", uid(w.active)), ["Frobnicate"]),
    "response tag as a request": (lambda w: struct("EncryptResponse", uid(w.active)), ["RequestMessage"]),
    "unknown enum": (
        lambda w: create_aes(enum("BlockCipherMode", "Rot13")),
        ["Rot13"],
    ),
    "unknown enum value as number": (
        lambda w: struct("Create", enum("ObjectType", "0x00007777"), aes_attributes()),
        ["ObjectType"],
    ),
    "UniqueIdentifier as Integer": (
        lambda w: struct("Get", item("UniqueIdentifier", "Integer", 5)),
        ["UniqueIdentifier", "TextString", "Integer"],
    ),
    "Integer given text": (lambda w: create_aes(integer("CryptographicLength", "abc")), ["CryptographicLength"]),
    "ByteString given non-hex": (lambda w: struct("Encrypt", uid(w.active), item("Data", "ByteString", "zz")), ["hex"]),
    "Integer out of range": (lambda w: create_aes(integer("CryptographicLength", 2**40)), ["range"]),
    "missing required field": (lambda w: struct("Create", aes_attributes()), ["ObjectType"]),
    "unknown id": (lambda w: struct("Get", uid("00000000-no-such-object")), ["not found", "00000000-no-such-object"]),
    "Encrypt with a revoked key": (
        lambda w: struct("Encrypt", uid(w.revoked), byte_string("Data", b"x")),
        ["WrongKeyLifecycleState", "Deactivated"],
    ),
    "Decrypt with a wrong tag": (
        lambda w: struct(
            "Decrypt",
            uid(w.active),
            byte_string("Data", w.ciphertext),
            byte_string("IvCounterNonce", w.nonce),
            byte_string("AuthenticatedEncryptionTag", bytes(16)),
        ),
        ["CryptographicFailure"],
    ),
    "Get a destroyed key": (lambda w: struct("Get", uid(w.destroyed)), ["ObjectDestroyed"]),
    "Encrypt with a destroyed key": (
        lambda w: struct("Encrypt", uid(w.destroyed), byte_string("Data", b"x")),
        ["ObjectDestroyed"],
    ),
    "Destroy an Active key": (lambda w: struct("Destroy", uid(w.active)), ["WrongKeyLifecycleState", "Active"]),
    "Activate an Active key": (lambda w: struct("Activate", uid(w.active)), ["WrongKeyLifecycleState"]),
    "tags matching no object": (
        lambda w: struct("Encrypt", uid(f'["{unique_tag("none")}"]'), byte_string("Data", b"x")),
        ["not found"],
    ),
    "tags matching two objects (Encrypt)": (
        lambda w: struct("Encrypt", uid(f'["{w.shared_tag}"]'), byte_string("Data", b"x")),
        ["2 objects"],
    ),
    "tags matching two objects (Get)": (lambda w: struct("Get", uid(f'["{w.shared_tag}"]')), ["2 objects"]),
    "tags matching two objects (Revoke)": (
        lambda w: struct("Revoke", uid(f'["{w.shared_tag}"]'), text("RevocationReason", "x")),
        ["2 objects"],
    ),
    "tags matching two objects (Destroy)": (lambda w: struct("Destroy", uid(f'["{w.shared_tag}"]')), ["2 objects"]),
    "empty tag list": (lambda w: struct("Get", uid("[]")), ["tag"]),
    "Create with a reserved tag": (
        lambda w: create_aes(
            struct(
                "Attribute",
                text("VendorIdentification", "cosmian"),
                text("AttributeName", "tag"),
                text("AttributeValue", '["_kk"]'),
            )
        ),
        ["reserved"],
    ),
    "Create an AES key of 100 bits": (lambda w: create_aes(length=100), ["length"]),
    "Revoke without a reason": (lambda w: struct("Revoke", uid(w.active)), ["RevocationReason"]),
    "AddAttribute of a server-owned attribute": (
        lambda w: struct("AddAttribute", uid(w.active), struct("NewAttribute", date_time("InitialDate", 1))),
        ["AttributeReadOnly"],
    ),
    "structure nesting deeper than 32": (
        lambda w: _nested_json(40),
        ["deeper"],
    ),
}


def _nested_json(depth: int) -> JsonItem:
    obj: JsonItem = integer("CryptographicLength", 1)
    for _ in range(depth):
        obj = struct("Attributes", obj)
    return struct("Locate", obj)


@pytest.mark.parametrize("case", list(BARE_CASES))
def test_bare_bad_request_is_a_clear_422(kmip: Kmip, world: World, unchanged: None, case: str) -> None:
    build, expected = BARE_CASES[case]
    body = build(world)
    message = kmip.fail(body)
    for word in expected:
        assert word.lower() in message.lower(), (case, message)
    assert "Internal server error" not in message


def test_bare_error_body_is_plain_text_not_json(kmip: Kmip, world: World, unchanged: None) -> None:
    r = kmip.post_bare(struct("Get", uid("nope")))
    assert r.status_code == 422
    assert r.headers["Content-Type"].startswith("text/plain")
    with pytest.raises(ValueError):
        json.loads(r.text)
    assert r.text.startswith("Item not found: ")


def test_bare_encrypt_with_a_secret_data_is_refused(kmip: Kmip, world: World, unchanged: None) -> None:
    message = kmip.fail(struct("Encrypt", uid(world.secret), byte_string("Data", b"x")))
    assert world.secret in message


def test_bare_encrypt_with_a_secret_data_carrying_aes_attributes_is_refused(
    kmip: Kmip, world: World, unchanged: None
) -> None:
    kmip.fail(struct("Encrypt", uid(world.secret_aes), byte_string("Data", b"x")))


def test_encrypt_with_an_empty_nonce_is_refused_or_returns_the_nonce(kmip: Kmip, world: World) -> None:
    r = kmip.post_bare(
        struct("Encrypt", uid(world.active), byte_string("Data", b"x"), byte_string("IvCounterNonce", b""))
    )
    if r.status_code == 422:
        return
    assert r.status_code == 200
    out = r.json()
    assert "IvCounterNonce" in [c["tag"] for c in out["value"]], out


# Requests that used to crash the request handler (HTTP 500): each must be a 422 like the cases above.
CRASHERS = [
    pytest.param(
        json.dumps(struct("Locate", struct("Attributes", item("Modulus", "BigInteger", "0x-5")))),
        id="BigInteger with a sign",
    ),
    pytest.param("[" * 50_000 + "]" * 50_000, id="JSON nested deeper than the recursion limit"),
    pytest.param(
        '{"tag":"Get","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"\\ud800"}]}',
        id="lone surrogate in an identifier"
    ),
    pytest.param(
        json.dumps(create_aes(text("Description", "\udc00"))),
        id="lone surrogate in an attribute"
    ),
]


@pytest.mark.parametrize("body", CRASHERS)
def test_bare_requests_that_crashed_the_handler(kmip: Kmip, world: World, unchanged: None, body: str) -> None:
    kmip.fail(body)


def test_out_of_calendar_dates_do_not_poison_an_object(fresh_server: ServerProcess) -> None:
    kmip = Kmip(fresh_server.url)
    key = kmip.create_bare(unique_tag())
    r = kmip.post_bare(
        struct(
            "SetAttribute", uid(key), struct("NewAttribute", item("ProtectStopDate", "DateTime", "0x7FFFFFFFFFFFFFF0"))
        )
    )
    assert r.status_code in (200, 422), r.text
    r = kmip.post_bare(struct("GetAttributes", uid(key)))
    assert r.status_code == 200, (r.status_code, r.text)


def test_create_refuses_an_identifier_that_reads_as_a_tag_list(fresh_server: ServerProcess) -> None:
    kmip = Kmip(fresh_server.url)  # a server of its own: such an object would break the snapshots here
    weird = f'["{unique_tag("id")}"]'
    r = kmip.post_bare(create_aes(uid(weird)))
    if r.status_code == 422:
        return
    assert r.status_code == 200
    assert kmip.post_bare(struct("GetAttributes", uid(weird))).status_code == 200


# ------------------------------------------------------------------------------------ inside RequestMessages


MessageCase = Callable[[World], JsonItem]

# (batch item, expected ResultReasons); the unknown enum / tag cases use number / hex forms here, which the
# JSON parser accepts, so that the failure happens in the message layer on both encodings.
MESSAGE_CASES: dict[str, tuple[MessageCase, set[str]]] = {
    "unknown id": (lambda w: batch_item("Get", uid("00000000-no-such-object")), {"ObjectNotFound", "ItemNotFound"}),
    "UniqueIdentifier as Integer": (
        lambda w: batch_item("Get", item("UniqueIdentifier", "Integer", 5)),
        {"InvalidMessage"},
    ),
    "unknown enum value": (
        lambda w: batch_item("Create", enum("ObjectType", "0x00007777"), aes_attributes()),
        {"InvalidMessage"},
    ),
    "unknown tag": (lambda w: batch_item("Get", uid(w.active), text("0x42FFF0", "x")), {"InvalidMessage"}),
    "unknown operation": (
        lambda w: struct("BatchItem", enum("Operation", "0x0000FFFF"), struct("RequestPayload")),
        {"OperationNotSupported"},
    ),
    "Encrypt with a SecretData": (
        lambda w: batch_item("Encrypt", uid(w.secret), byte_string("Data", b"x")),
        {"InvalidField", "InvalidObjectType", "IllegalObjectType", "IncompatibleCryptographicUsageMask"},
    ),
    "Encrypt with a revoked key": (
        lambda w: batch_item("Encrypt", uid(w.revoked), byte_string("Data", b"x")),
        {"WrongKeyLifecycleState"},
    ),
    "Decrypt with a wrong tag": (
        lambda w: batch_item(
            "Decrypt",
            uid(w.active),
            byte_string("Data", w.ciphertext),
            byte_string("IVCounterNonce", w.nonce),
            byte_string("AuthenticatedEncryptionTag", bytes(16)),
        ),
        {"CryptographicFailure"},
    ),
    "Get a destroyed key": (lambda w: batch_item("Get", uid(w.destroyed)), {"ObjectDestroyed"}),
    "Encrypt with a destroyed key": (
        lambda w: batch_item("Encrypt", uid(w.destroyed), byte_string("Data", b"x")),
        {"ObjectDestroyed"},
    ),
    "Destroy an Active key": (lambda w: batch_item("Destroy", uid(w.active)), {"WrongKeyLifecycleState"}),
    "tags matching no object": (
        lambda w: batch_item("Get", uid(f'["{unique_tag("none")}"]')),
        {"ObjectNotFound", "ItemNotFound"},
    ),
    "tags matching two objects": (lambda w: batch_item("Get", uid(f'["{w.shared_tag}"]')), {"InvalidField"}),
    "missing payload field": (lambda w: batch_item("Create", aes_attributes()), {"InvalidMessage"}),
}


def _one_failed_item(response: JsonItem) -> tuple[str, str]:
    assert response["tag"] == "ResponseMessage"
    header = child(response, "ResponseHeader")
    (bi,) = children(response, "BatchItem")
    assert value(header, "BatchCount") == 1
    status, reason, message = result(bi)
    assert status == "OperationFailed", bi
    assert reason is not None and message, bi
    assert "Traceback" not in message
    assert not (children(bi, "ResponsePayload")), bi
    return reason, message


@pytest.mark.parametrize("encoding", ["json", "binary"])
@pytest.mark.parametrize("case", list(MESSAGE_CASES))
def test_failure_inside_a_request_message(kmip: Kmip, world: World, unchanged: None, case: str, encoding: str) -> None:
    build, expected = MESSAGE_CASES[case]
    response = kmip.message(request_message(build(world)), json=encoding == "json")
    reason, _ = _one_failed_item(response)
    if encoding == "json":
        reason = reason.replace("_", "")  # the Cosmian spellings of the JSON endpoint (see test_json_codec)
    assert reason in expected, (case, reason)


def _binary_query() -> bytes:
    return to_binary(request_message(batch_item("Query", enum("QueryFunction", "QueryOperations"))))


def _with_length(data: bytes, length: int) -> bytes:
    return data[:4] + binary_struct.pack(">I", length) + data[8:]


BINARY_GARBAGE: dict[str, Callable[[], bytes]] = {
    "empty body": lambda: b"",
    "truncated header": lambda: _binary_query()[:5],
    "truncated value": lambda: _binary_query()[:-8],
    "one byte short": lambda: _binary_query()[:-1],
    "huge length 0xFFFFFFF0": lambda: _with_length(_binary_query(), 0xFFFFFFF0),
    "huge length 0x7FFFFFFF": lambda: _with_length(_binary_query(), 0x7FFFFFFF),
    "length beyond buffer": lambda: _with_length(_binary_query(), len(_binary_query())),
    "trailing bytes": lambda: _binary_query() + bytes(8),
    "unknown type byte": lambda: _binary_query()[:3] + b"\x0f" + _binary_query()[4:],
    "JSON sent as binary": lambda: json.dumps(request_message()).encode(),
    "arbitrary bytes": lambda: hashlib.sha512(b"not a KMIP message").digest(),
    "not a RequestMessage": lambda: to_binary(struct("ResponseMessage")),
    "structure nested 40 deep": lambda: _nested_message(40),
}


def _nested_message(depth: int) -> bytes:
    """Built from TTLV directly: the JSON parser would refuse the nesting before it reached the server."""
    item_: TTLV = TTLV(Tag.CryptographicLength, ItemType.Integer, 1)
    for _ in range(depth):
        item_ = TTLV(Tag.Attributes, ItemType.Structure, [item_])
    message = json_codec.from_json(request_message(batch_item("Locate")))
    (bi,) = message.find_all(Tag.BatchItem)
    payload = bi.find(Tag.RequestPayload)
    assert payload is not None
    payload.value.append(item_)
    return binary.encode(message)


@pytest.mark.parametrize("case", list(BINARY_GARBAGE))
def test_binary_garbage_gets_an_invalid_message_response(kmip: Kmip, world: World, unchanged: None, case: str) -> None:
    response = kmip.message_raw(BINARY_GARBAGE[case]())
    reason, message = _one_failed_item(response)
    assert reason == "InvalidMessage", (case, message)


def test_binary_messages_that_decode_are_answered(kmip: Kmip, world: World, unchanged: None) -> None:
    """The reference for the garbage cases: the same message intact is served."""
    response = kmip.message_raw(_binary_query())
    (bi,) = children(response, "BatchItem")
    assert result(bi)[0] == "Success"
    assert "Encrypt" in values(child(bi, "ResponsePayload"), "Operation")


def test_unsupported_protocol_version(kmip: Kmip, world: World, unchanged: None) -> None:
    message = request_message(batch_item("Get", uid(world.active)))
    message["value"][0]["value"][0] = struct(
        "ProtocolVersion", integer("ProtocolVersionMajor", 9), integer("ProtocolVersionMinor", 9)
    )
    reason, _ = _one_failed_item(kmip.message(message))
    assert reason == "UnsupportedProtocolVersion"


@pytest.mark.parametrize("bad", ["enum", "tag"])
def test_json_request_message_with_unknown_names_gets_a_response_message(
    kmip: Kmip, world: World, unchanged: None, bad: str
) -> None:
    payload = enum("ObjectType", "NoSuchType") if bad == "enum" else text("NoSuchTag", "x")
    message = request_message(batch_item("Create", payload, aes_attributes()))
    r = kmip.post_bare(message)
    assert r.status_code == 200, (r.status_code, r.text)
    reason, _ = _one_failed_item(r.json())
    assert reason.replace("_", "") == "InvalidMessage"


def test_xml_request_with_a_signed_big_integer(kmip: Kmip, world: World, unchanged: None) -> None:
    body = (
        "<RequestMessage><RequestHeader><ProtocolVersion><ProtocolVersionMajor type='Integer' value='2'/>"
        "<ProtocolVersionMinor type='Integer' value='1'/></ProtocolVersion><BatchCount type='Integer' value='1'/>"
        "</RequestHeader><BatchItem><Operation type='Enumeration' value='Locate'/><RequestPayload><Attributes>"
        "<Modulus type='BigInteger' value='-5'/></Attributes></RequestPayload></BatchItem></RequestMessage>"
    )
    r = kmip.http.post(f"{kmip.url}/kmip", data=body, headers={"Content-Type": "application/xml"}, timeout=30)
    assert r.status_code == 200, (r.status_code, r.text)
    assert "InvalidMessage" in r.text


# ------------------------------------------------------------------------------------------------ HTTP level


@pytest.mark.parametrize("content_type", ["text/csv", "application/x-www-form-urlencoded", "image/png"])
def test_unsupported_content_type_is_415(kmip: Kmip, world: World, unchanged: None, content_type: str) -> None:
    r = kmip.post_binary(_binary_query(), content_type=content_type)
    assert r.status_code == 415
    assert r.headers["Content-Type"].startswith("text/plain")
    assert content_type in r.text


def test_unknown_path_is_404_text(kmip: Kmip, world: World, unchanged: None) -> None:
    r = kmip.http.get(f"{kmip.url}/no/such/path", timeout=30)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "Not Found" in r.text
    r = kmip.http.post(f"{kmip.url}/kmip/1_4", json=struct("Query"), timeout=30)
    assert r.status_code == 404


def test_wrong_method_is_405(kmip: Kmip, world: World, unchanged: None) -> None:
    r = kmip.http.get(f"{kmip.url}/kmip/2_1", timeout=30)
    assert r.status_code == 405
    assert "Traceback" not in r.text


@pytest.mark.parametrize("route", ["/kmip/2_1", "/kmip"])
def test_body_larger_than_the_limit_is_413(kmip: Kmip, world: World, unchanged: None, route: str) -> None:
    big = create_aes(text("Description", "x" * (MAX_BODY + 1)))
    r = requests.post(f"{kmip.url}{route}", json=big, timeout=60)
    assert r.status_code == 413, (r.status_code, r.text[:200])
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "Traceback" not in r.text
    # Half the limit is served (a read-only Locate that matches nothing).
    fits = struct("Locate", struct("Attributes", text("Description", "x" * (MAX_BODY // 2))))
    r = requests.post(f"{kmip.url}/kmip/2_1", json=fits, timeout=60)
    assert r.status_code == 200, r.text[:200]
    assert value(r.json(), "LocatedItems") == 0


def test_snapshot_sees_changes(kmip: Kmip, world: World) -> None:
    """The no-change check would notice a change: a successful write alters the snapshot."""
    before = snapshot(kmip)
    key = kmip.create()
    after = snapshot(kmip)
    assert set(after) - set(before) == {key}
    kmip.op("AddAttribute", uid(key), struct("NewAttribute", text("Description", "d")))
    assert snapshot(kmip)[key] != after[key]
