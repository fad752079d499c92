"""KMIP object states, batches, attributes, Locate, ReKey and the server operations, with RequestMessages in
binary TTLV on POST /kmip against a real server. Each test works on objects of its own (unique tags and names),
so the tests can share the session server."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections.abc import Iterable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.server.kmip_http import (
    JsonItem,
    Kmip,
    batch_item,
    byte_string,
    child,
    children,
    create_aes,
    date_time,
    enum,
    has,
    integer,
    payload,
    raw_key_block,
    result,
    struct,
    tag_attribute,
    text,
    uid,
    unique_tag,
    value,
    values,
    vendor_attribute,
)
from tests.support.server import ServerProcess

UNSPECIFIED = struct("RevocationReason", enum("RevocationReasonCode", "Unspecified"))
KEY_COMPROMISE = struct(
    "RevocationReason", enum("RevocationReasonCode", "KeyCompromise"), text("RevocationMessage", "leaked")
)
# RFC 4231 test case 2
RFC4231_KEY = b"Jefe"
RFC4231_DATA = b"what do ya want for nothing?"
RFC4231_HMAC_SHA256 = bytes.fromhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


@pytest.fixture(scope="module")
def kmip(kms_server: ServerProcess) -> Kmip:
    return Kmip(kms_server.url)


def _reason(kmip: Kmip, operation: str, *items: JsonItem | None) -> str:
    return kmip.op_fails(operation, *items)[0]


def _encrypt(kmip: Kmip, key: str, data: bytes) -> JsonItem:
    return kmip.op("Encrypt", uid(key), byte_string("Data", data))


def _decrypt_items(key: str, enc: JsonItem) -> list[JsonItem]:
    return [
        uid(key),
        byte_string("Data", bytes.fromhex(value(enc, "Data"))),
        byte_string("IVCounterNonce", bytes.fromhex(value(enc, "IVCounterNonce"))),
        byte_string("AuthenticatedEncryptionTag", bytes.fromhex(value(enc, "AuthenticatedEncryptionTag"))),
    ]


def _decrypt(kmip: Kmip, key: str, enc: JsonItem) -> bytes:
    return bytes.fromhex(value(kmip.op("Decrypt", *_decrypt_items(key, enc)), "Data"))


def _register(kmip: Kmip, material: bytes, *attributes: JsonItem, algorithm: str = "AES", mask: int = 12) -> str:
    resp = kmip.op(
        "Register",
        enum("ObjectType", "SymmetricKey"),
        struct("Attributes", integer("CryptographicUsageMask", mask), *attributes),
        struct("SymmetricKey", raw_key_block(material, algorithm)),
    )
    return value(resp, "UniqueIdentifier")


def _key_material(kmip: Kmip, key: str) -> bytes:
    got = kmip.op("Get", uid(key))
    block = child(child(got, "SymmetricKey"), "KeyBlock")
    return bytes.fromhex(value(child(block, "KeyValue"), "KeyMaterial"))


def _ids(items: Iterable[JsonItem]) -> list[str]:
    return [value(payload(bi), "UniqueIdentifier") for bi in items]


# ----------------------------------------------------------------------------------------------- states


def test_lifecycle_deactivated_then_destroyed(kmip: Kmip) -> None:
    key = kmip.create()
    assert kmip.state(key) == "PreActive"
    assert _reason(kmip, "Encrypt", uid(key), byte_string("Data", b"x")) == "WrongKeyLifecycleState"

    assert value(kmip.op("Activate", uid(key)), "UniqueIdentifier") == key
    assert kmip.state(key) == "Active"
    assert has(kmip.attributes(key, "ActivationDate"), "ActivationDate")
    assert _reason(kmip, "Activate", uid(key)) == "WrongKeyLifecycleState"
    enc = _encrypt(kmip, key, b"lifecycle")
    assert _decrypt(kmip, key, enc) == b"lifecycle"
    # The ciphertext really is AES-GCM under the key (checked outside the server).
    material = _key_material(kmip, key)
    nonce = bytes.fromhex(value(enc, "IVCounterNonce"))
    sealed = bytes.fromhex(value(enc, "Data")) + bytes.fromhex(value(enc, "AuthenticatedEncryptionTag"))
    assert AESGCM(material).decrypt(nonce, sealed, None) == b"lifecycle"

    kmip.op("Revoke", uid(key), UNSPECIFIED)
    assert kmip.state(key) == "Deactivated"
    attrs = kmip.attributes(key, "DeactivationDate", "RevocationReason")
    assert has(attrs, "DeactivationDate")
    assert value(child(attrs, "RevocationReason"), "RevocationReasonCode") == "Unspecified"
    assert _reason(kmip, "Encrypt", uid(key), byte_string("Data", b"x")) == "WrongKeyLifecycleState"
    assert _decrypt(kmip, key, enc) == b"lifecycle"  # processing is still allowed
    assert _reason(kmip, "Activate", uid(key)) == "WrongKeyLifecycleState"

    kmip.op("Destroy", uid(key))
    assert kmip.state(key) == "Destroyed"
    assert has(kmip.attributes(key, "DestroyDate"), "DestroyDate")
    assert _reason(kmip, "Get", uid(key)) == "ObjectDestroyed"
    assert _reason(kmip, "Decrypt", *_decrypt_items(key, enc)) == "ObjectDestroyed"
    assert _reason(kmip, "Destroy", uid(key)) == "ObjectDestroyed"
    assert _reason(kmip, "Revoke", uid(key), UNSPECIFIED) == "ObjectDestroyed"


def test_lifecycle_compromised_then_destroyed_compromised(kmip: Kmip) -> None:
    key = kmip.create()
    kmip.op("Activate", uid(key))
    enc = _encrypt(kmip, key, b"secret")
    kmip.op("Revoke", uid(key), KEY_COMPROMISE)
    assert kmip.state(key) == "Compromised"
    attrs = kmip.attributes(key, "CompromiseDate", "CompromiseOccurrenceDate", "RevocationReason")
    assert has(attrs, "CompromiseDate") and has(attrs, "CompromiseOccurrenceDate")
    reason = child(attrs, "RevocationReason")
    assert (value(reason, "RevocationReasonCode"), value(reason, "RevocationMessage")) == ("KeyCompromise", "leaked")
    assert _reason(kmip, "Encrypt", uid(key), byte_string("Data", b"x")) == "WrongKeyLifecycleState"
    assert _decrypt(kmip, key, enc) == b"secret"

    kmip.op("Destroy", uid(key))
    assert kmip.state(key) == "DestroyedCompromised"
    assert _reason(kmip, "Get", uid(key)) == "ObjectDestroyed"


def test_deactivated_key_can_still_be_compromised(kmip: Kmip) -> None:
    key = kmip.create()
    kmip.op("Activate", uid(key))
    kmip.op("Revoke", uid(key), UNSPECIFIED)
    kmip.op("Revoke", uid(key), KEY_COMPROMISE)
    assert kmip.state(key) == "Compromised"


def test_pre_active_key_cannot_be_used_but_can_be_destroyed(kmip: Kmip) -> None:
    key = kmip.create()
    assert _reason(kmip, "Encrypt", uid(key), byte_string("Data", b"x")) == "WrongKeyLifecycleState"
    assert (
        _reason(
            kmip,
            "Decrypt",
            uid(key),
            byte_string("Data", b"x"),
            byte_string("IVCounterNonce", bytes(12)),
            byte_string("AuthenticatedEncryptionTag", bytes(16)),
        )
        == "WrongKeyLifecycleState"
    )
    kmip.op("Destroy", uid(key))
    assert kmip.state(key) == "Destroyed"


def test_active_key_cannot_be_destroyed_until_revoked(kmip: Kmip) -> None:
    key = kmip.create()
    kmip.op("Activate", uid(key))
    assert _reason(kmip, "Destroy", uid(key)) == "WrongKeyLifecycleState"
    assert kmip.state(key) == "Active"
    assert len(_key_material(kmip, key)) == 32


def test_activation_date_decides_the_initial_state_at_register(kmip: Kmip) -> None:
    now = int(time.time())
    past = _register(kmip, bytes(range(32)), date_time("ActivationDate", now - 3600))
    assert kmip.state(past) == "Active"
    assert value(_encrypt(kmip, past, b"x"), "UniqueIdentifier") == past
    future = _register(kmip, bytes(range(32)), date_time("ActivationDate", now + 24 * 3600))
    assert kmip.state(future) == "PreActive"
    assert _reason(kmip, "Encrypt", uid(future), byte_string("Data", b"x")) == "WrongKeyLifecycleState"
    over = _register(
        kmip,
        bytes(range(32)),
        date_time("ActivationDate", now - 3600),
        date_time("DeactivationDate", now - 60),
    )
    assert kmip.state(over) == "Deactivated"
    plain = _register(kmip, bytes(range(32)))
    assert kmip.state(plain) == "PreActive"


def test_bare_cosmian_create_is_active_immediately(kmip: Kmip) -> None:
    key = kmip.create_bare(unique_tag())
    assert kmip.state(key) == "Active"
    assert value(_encrypt(kmip, key, b"x"), "UniqueIdentifier") == key


def test_register_keeps_the_material(kmip: Kmip) -> None:
    material = hashlib.sha256(b"registered").digest()
    key = _register(kmip, material, date_time("ActivationDate", int(time.time()) - 10))
    assert _key_material(kmip, key) == material
    digest = child(kmip.attributes(key, "Digest"), "Digest")
    assert bytes.fromhex(value(digest, "DigestValue")) == hashlib.sha256(material).digest()


# ---------------------------------------------------------------------------------------------- batches


def _tagged_create(tag: str) -> JsonItem:
    return batch_item("Create", *create_aes(tag_attribute(tag))["value"])


FAILING = batch_item("Get", uid("00000000-does-not-exist"))


def _option(name: str) -> list[JsonItem]:
    return [enum("BatchErrorContinuationOption", name)]


def test_batch_stop(kmip: Kmip) -> None:
    first, third = unique_tag(), unique_tag()
    items = kmip.batch(_tagged_create(first), FAILING, _tagged_create(third), header=_option("Stop"))
    assert result(items[0])[0] == "Success"
    assert result(items[1])[:2] == ("OperationFailed", "ObjectNotFound")
    assert all(result(bi)[0] != "Success" for bi in items[2:])
    assert kmip.locate_tag(first) == _ids(items[:1])  # completed items are kept
    assert kmip.locate_tag(third) == []  # later items are not run


def test_batch_stop_is_the_default(kmip: Kmip) -> None:
    first, third = unique_tag(), unique_tag()
    items = kmip.batch(_tagged_create(first), FAILING, _tagged_create(third))
    assert [result(bi)[0] for bi in items[:2]] == ["Success", "OperationFailed"]
    assert len(kmip.locate_tag(first)) == 1
    assert kmip.locate_tag(third) == []


def test_batch_continue(kmip: Kmip) -> None:
    first, third = unique_tag(), unique_tag()
    items = kmip.batch(_tagged_create(first), FAILING, _tagged_create(third), header=_option("Continue"))
    assert [result(bi)[0] for bi in items] == ["Success", "OperationFailed", "Success"]
    assert kmip.locate_tag(first) == _ids(items[:1])
    assert kmip.locate_tag(third) == _ids(items[2:])


def test_batch_undo_rolls_back_a_create(kmip: Kmip) -> None:
    tag = unique_tag()
    items = kmip.batch(_tagged_create(tag), FAILING, header=_option("Undo"))
    assert [result(bi)[0] for bi in items] == ["OperationUndone", "OperationFailed"]
    assert result(items[1])[1] == "ObjectNotFound"
    assert kmip.locate_tag(tag) == []


def test_batch_undo_restores_a_destroyed_key(kmip: Kmip) -> None:
    tag = unique_tag()
    key = kmip.create(tag_attribute(tag))
    kmip.op("Activate", uid(key))
    material = _key_material(kmip, key)
    items = kmip.batch(
        batch_item("Revoke", uid(key), UNSPECIFIED),
        batch_item("Destroy", uid(key)),
        batch_item("AddAttribute", uid(key), struct("NewAttribute", text("Description", "undone"))),
        FAILING,
        header=_option("Undo"),
    )
    assert [result(bi)[0] for bi in items] == ["OperationUndone"] * 3 + ["OperationFailed"]
    assert kmip.state(key) == "Active"
    assert not has(kmip.attributes(key, "Description"), "Description")
    assert _key_material(kmip, key) == material
    assert kmip.locate_tag(tag) == [key]


def test_batch_success_with_undo_commits(kmip: Kmip) -> None:
    tag = unique_tag()
    items = kmip.batch(_tagged_create(tag), batch_item("Activate"), header=_option("Undo"))
    assert [result(bi)[0] for bi in items] == ["Success", "Success"]
    (key,) = kmip.locate_tag(tag)
    assert kmip.state(key) == "Active"


def test_id_placeholder(kmip: Kmip) -> None:
    tag = unique_tag()
    items = kmip.batch(
        _tagged_create(tag),
        batch_item("Activate"),
        batch_item("Encrypt", byte_string("Data", b"placeholder")),
        batch_item("AddAttribute", struct("NewAttribute", text("Description", "via placeholder"))),
        batch_item("GetAttributes", enum("AttributeReference", "State")),
    )
    assert [result(bi)[0] for bi in items] == ["Success"] * 5
    key = _ids(items[:1])[0]
    assert _ids(items) == [key] * 5
    assert value(child(payload(items[4]), "Attributes"), "State") == "Active"
    assert value(kmip.attributes(key, "Description"), "Description") == "via placeholder"
    assert _decrypt(kmip, key, payload(items[2])) == b"placeholder"


def test_id_placeholder_without_a_previous_object_fails(kmip: Kmip) -> None:
    reason, _ = kmip.op_fails("Activate")
    assert reason in ("InvalidField", "MissingData", "InvalidMessage")


def test_batch_items_keep_their_unique_batch_item_ids(kmip: Kmip) -> None:
    items = kmip.batch(
        batch_item("Query", enum("QueryFunction", "QueryObjects"), batch_id=b"\x01"),
        batch_item("Get", uid("nope"), batch_id=b"\x02\x03"),
        header=_option("Continue"),
    )
    assert [value(bi, "UniqueBatchItemID") for bi in items] == ["01", "0203"]


def test_maximum_response_size(kmip: Kmip) -> None:
    query = batch_item("Query", enum("QueryFunction", "QueryOperations"))
    (bi,) = kmip.batch(query, header=[integer("MaximumResponseSize", 64)])
    status, reason, _ = result(bi)
    assert (status, reason) == ("OperationFailed", "ResponseTooLarge")
    assert not has(bi, "ResponsePayload")
    (bi,) = kmip.batch(query, header=[integer("MaximumResponseSize", 8192)])
    assert result(bi)[0] == "Success"
    assert "Encrypt" in values(payload(bi), "Operation")


def test_response_too_large_changes_nothing(kmip: Kmip) -> None:
    tag = unique_tag()
    (bi,) = kmip.batch(_tagged_create(tag), header=[integer("MaximumResponseSize", 16)])
    assert result(bi)[:2] == ("OperationFailed", "ResponseTooLarge")
    assert kmip.locate_tag(tag) == []


def test_response_header_echoes_version_and_correlation(kmip: Kmip) -> None:
    response = kmip.message(
        {
            "tag": "RequestMessage",
            "type": "Structure",
            "value": [
                struct(
                    "RequestHeader",
                    struct(
                        "ProtocolVersion",
                        integer("ProtocolVersionMajor", 1),
                        integer("ProtocolVersionMinor", 4),
                    ),
                    text("ClientCorrelationValue", "corr-42"),
                    integer("BatchCount", 1),
                ),
                batch_item("Query", enum("QueryFunction", "QueryObjects")),
            ],
        }
    )
    header = child(response, "ResponseHeader")
    version = child(header, "ProtocolVersion")
    assert (value(version, "ProtocolVersionMajor"), value(version, "ProtocolVersionMinor")) == (1, 4)
    assert value(header, "ClientCorrelationValue") == "corr-42"
    assert value(header, "BatchCount") == 1
    assert abs(_epoch(value(header, "TimeStamp")) - time.time()) < 24 * 3600


def _epoch(text_time: str) -> int:
    return calendar.timegm(time.strptime(text_time, "%Y-%m-%dT%H:%M:%SZ"))


# ------------------------------------------------------------------------------------------- attributes


def test_add_set_modify_delete_standard_attributes(kmip: Kmip) -> None:
    key = kmip.create()

    def edit(operation: str, *items: JsonItem) -> tuple[str, str | None]:
        (bi,) = kmip.batch(batch_item(operation, uid(key), *items))
        return result(bi)[:2]

    assert edit("AddAttribute", struct("NewAttribute", text("Description", "one"))) == ("Success", None)
    assert edit("AddAttribute", struct("NewAttribute", text("Description", "two"))) == (
        "OperationFailed",
        "AttributeSingleValued",
    )
    assert value(kmip.attributes(key, "Description"), "Description") == "one"
    assert edit("SetAttribute", struct("NewAttribute", text("Description", "three")))[0] == "Success"
    assert value(kmip.attributes(key, "Description"), "Description") == "three"
    assert (
        edit(
            "ModifyAttribute",
            struct("CurrentAttribute", text("Description", "three")),
            struct("NewAttribute", text("Description", "four")),
        )[0]
        == "Success"
    )
    assert value(kmip.attributes(key, "Description"), "Description") == "four"
    assert edit("DeleteAttribute", enum("AttributeReference", "Description"))[0] == "Success"
    assert not has(kmip.attributes(key, "Description"), "Description")
    assert edit("DeleteAttribute", enum("AttributeReference", "Description")) == (
        "OperationFailed",
        "AttributeNotFound",
    )

    # Names are multi-valued.
    for name in ("n1-" + key, "n2-" + key):
        assert (
            edit(
                "AddAttribute",
                struct(
                    "NewAttribute", struct("Name", text("NameValue", name), enum("NameType", "UninterpretedTextString"))
                ),
            )[0]
            == "Success"
        )
    names = [value(n, "NameValue") for n in children(kmip.attributes(key, "Name"), "Name")]
    assert names == ["n1-" + key, "n2-" + key]
    assert kmip.locate(struct("Name", text("NameValue", "n2-" + key), enum("NameType", "UninterpretedTextString"))) == [
        key
    ]


def test_vendor_attributes(kmip: Kmip) -> None:
    key = kmip.create()
    ref = struct("AttributeReference", text("VendorIdentification", "acme"), text("AttributeName", "color"))

    def colors() -> list[str]:
        attrs = kmip.op("GetAttributes", uid(key), ref)
        return [value(a, "AttributeValue") for a in children(child(attrs, "Attributes"), "Attribute")]

    kmip.op("AddAttribute", uid(key), struct("NewAttribute", vendor_attribute("color", text("v", "blue"), "acme")))
    assert colors() == ["blue"]
    kmip.op("ModifyAttribute", uid(key), struct("NewAttribute", vendor_attribute("color", text("v", "red"), "acme")))
    assert colors() == ["red"]
    kmip.op("SetAttribute", uid(key), struct("NewAttribute", vendor_attribute("color", text("v", "green"), "acme")))
    assert colors() == ["green"]
    kmip.op("DeleteAttribute", uid(key), ref)
    assert colors() == []
    assert _reason(kmip, "DeleteAttribute", uid(key), ref) == "AttributeNotFound"


def test_tag_vendor_attribute_edits_the_tags(kmip: Kmip) -> None:
    original, added, replaced, modified = (unique_tag() for _ in range(4))
    key = kmip.create(tag_attribute(original))
    assert kmip.locate_tag(original) == [key]

    kmip.op("AddAttribute", uid(key), struct("NewAttribute", tag_attribute(added)))
    assert kmip.locate_tag(original) == kmip.locate_tag(added) == [key]
    assert kmip.locate_tag(original, added) == [key]

    kmip.op("SetAttribute", uid(key), struct("NewAttribute", tag_attribute(replaced)))
    assert kmip.locate_tag(original) == kmip.locate_tag(added) == []
    assert kmip.locate_tag(replaced) == [key]

    kmip.op("ModifyAttribute", uid(key), struct("NewAttribute", tag_attribute(modified)))
    assert kmip.locate_tag(replaced) == []
    assert kmip.locate_tag(modified) == [key]

    kmip.op(
        "DeleteAttribute",
        uid(key),
        struct("AttributeReference", text("VendorIdentification", "cosmian"), text("AttributeName", "tag")),
    )
    assert kmip.locate_tag(modified) == []
    # System tags stay: the key is still a _kk.
    assert key in kmip.locate_tag("_kk")

    assert _reason(kmip, "AddAttribute", uid(key), struct("NewAttribute", tag_attribute("_mine"))) == "InvalidField"


@pytest.mark.parametrize(
    "attribute",
    [
        enum("State", "Active"),
        enum("ObjectType", "SecretData"),
        date_time("InitialDate", 1_000_000),
        date_time("LastChangeDate", 1_000_000),
        text("UniqueIdentifier", "chosen"),
        struct("Digest", enum("HashingAlgorithm", "SHA_256"), byte_string("DigestValue", bytes(32))),
        enum("KeyFormatType", "Raw"),
        byte_string("ShortUniqueIdentifier", bytes(32)),
        enum("CryptographicAlgorithm", "DES3"),
        integer("CryptographicLength", 128),
    ],
    ids=lambda a: a["tag"],
)
@pytest.mark.parametrize("operation", ["AddAttribute", "SetAttribute", "ModifyAttribute"])
def test_server_owned_attributes_are_read_only(kmip: Kmip, attribute: JsonItem, operation: str) -> None:
    key = kmip.create()
    before = kmip.attributes(key)
    assert _reason(kmip, operation, uid(key), struct("NewAttribute", attribute)) == "AttributeReadOnly"
    assert kmip.attributes(key) == before


@pytest.mark.parametrize("tag", ["State", "ObjectType", "InitialDate", "UniqueIdentifier", "CryptographicAlgorithm"])
def test_server_owned_attributes_cannot_be_deleted(kmip: Kmip, tag: str) -> None:
    key = kmip.create()
    before = kmip.attributes(key)
    assert _reason(kmip, "DeleteAttribute", uid(key), enum("AttributeReference", tag)) == "AttributeReadOnly"
    assert kmip.attributes(key) == before


def test_get_attribute_list(kmip: Kmip) -> None:
    tag = unique_tag()
    key = kmip.create(tag_attribute(tag), text("Description", "listed"))
    resp = kmip.op("GetAttributeList", uid(key))
    assert value(resp, "UniqueIdentifier") == key
    refs = children(resp, "AttributeReference")
    standard = [r["value"] for r in refs if r["type"] == "Enumeration"]
    for name in (
        "UniqueIdentifier",
        "ObjectType",
        "State",
        "CryptographicAlgorithm",
        "CryptographicLength",
        "CryptographicUsageMask",
        "InitialDate",
        "Description",
    ):
        assert name in standard, name
    assert "ActivationDate" not in standard  # not set on a PreActive key
    vendor = [(value(r, "VendorIdentification"), value(r, "AttributeName")) for r in refs if r["type"] == "Structure"]
    assert ("cosmian", "tag") in vendor
    # Every listed attribute can be fetched by its reference.
    attrs = kmip.op("GetAttributes", uid(key), *refs)
    assert {c["tag"] for c in child(attrs, "Attributes")["value"]} >= set(standard)


def test_get_attributes_returns_references_in_the_order_asked(kmip: Kmip) -> None:
    key = kmip.create()
    attrs = kmip.attributes(key, "CryptographicLength", "State", "ObjectType")
    assert [c["tag"] for c in attrs["value"]] == ["CryptographicLength", "State", "ObjectType"]


# ---------------------------------------------------------------------------------------------- Locate


def test_locate_by_type_algorithm_length_name_tags_and_state(kmip: Kmip) -> None:
    tag = unique_tag()
    name = "name-" + tag
    aes128 = kmip.create(tag_attribute(tag), length=128)
    aes256 = kmip.create(
        tag_attribute(tag), struct("Name", text("NameValue", name), enum("NameType", "UninterpretedTextString"))
    )
    kmip.op("Activate", uid(aes256))
    hmac_key = _register(kmip, bytes(32), tag_attribute(tag), algorithm="HMACSHA256", mask=0x180)
    secret = value(
        kmip.op(
            "Register",
            enum("ObjectType", "SecretData"),
            struct("Attributes", tag_attribute(tag)),
            struct(
                "SecretData",
                enum("SecretDataType", "Password"),
                struct(
                    "KeyBlock",
                    enum("KeyFormatType", "Opaque"),
                    struct("KeyValue", byte_string("KeyMaterial", b"pw")),
                ),
            ),
        ),
        "UniqueIdentifier",
    )
    everything = {aes128, aes256, hmac_key, secret}
    mine = tag_attribute(tag)

    assert set(kmip.locate(mine)) == everything
    assert set(kmip.locate(mine, enum("ObjectType", "SymmetricKey"))) == {aes128, aes256, hmac_key}
    assert kmip.locate(mine, enum("ObjectType", "SecretData")) == [secret]
    assert set(kmip.locate(mine, enum("CryptographicAlgorithm", "AES"))) == {aes128, aes256}
    assert kmip.locate(mine, enum("CryptographicAlgorithm", "HMACSHA256")) == [hmac_key]
    assert kmip.locate(mine, integer("CryptographicLength", 128)) == [aes128]
    assert set(kmip.locate(mine, integer("CryptographicLength", 256))) == {aes256, hmac_key}
    assert kmip.locate(struct("Name", text("NameValue", name), enum("NameType", "UninterpretedTextString"))) == [aes256]
    assert kmip.locate(mine, enum("State", "Active")) == [aes256]
    assert set(kmip.locate(mine, enum("State", "PreActive"))) == {aes128, hmac_key, secret}
    assert kmip.locate(
        mine,
        enum("ObjectType", "SymmetricKey"),
        enum("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 128),
    ) == [aes128]
    assert kmip.locate(mine, enum("ObjectType", "PrivateKey")) == []
    assert set(kmip.locate_tag(tag, "_kk")) == {aes128, aes256, hmac_key}
    assert kmip.locate_tag(tag, "_sd") == [secret]

    # Destroyed objects are found only when that state is asked for.
    kmip.op("Destroy", uid(aes128))
    assert set(kmip.locate(mine)) == everything - {aes128}
    assert kmip.locate(mine, enum("State", "Destroyed")) == [aes128]


def test_locate_paging(kmip: Kmip) -> None:
    tag = unique_tag()
    created = {kmip.create(tag_attribute(tag)) for _ in range(5)}
    full = kmip.op("Locate", struct("Attributes", tag_attribute(tag)))
    assert value(full, "LocatedItems") == 5
    order = values(full, "UniqueIdentifier")
    assert set(order) == created

    pages = []
    for offset in (0, 2, 4, 6):
        resp = kmip.op(
            "Locate",
            integer("MaximumItems", 2),
            integer("OffsetItems", offset),
            struct("Attributes", tag_attribute(tag)),
        )
        assert value(resp, "LocatedItems") == 5  # the total, whatever the page
        pages.append(values(resp, "UniqueIdentifier"))
    assert [len(p) for p in pages] == [2, 2, 1, 0]
    assert pages[0] + pages[1] + pages[2] == order

    only_max = kmip.op("Locate", integer("MaximumItems", 3), struct("Attributes", tag_attribute(tag)))
    assert values(only_max, "UniqueIdentifier") == order[:3]
    only_offset = kmip.op("Locate", integer("OffsetItems", 3), struct("Attributes", tag_attribute(tag)))
    assert values(only_offset, "UniqueIdentifier") == order[3:]


def test_locate_result_feeds_the_id_placeholder(kmip: Kmip) -> None:
    tag = unique_tag()
    key = kmip.create(tag_attribute(tag))
    items = kmip.batch(
        batch_item("Locate", struct("Attributes", tag_attribute(tag))),
        batch_item("Activate"),
    )
    assert [result(bi)[0] for bi in items] == ["Success", "Success"]
    assert kmip.state(key) == "Active"


# ----------------------------------------------------------------------------------------------- ReKey


def test_rekey(kmip: Kmip) -> None:
    tag = unique_tag()
    old = kmip.create(tag_attribute(tag), text("Description", "rotated"))
    kmip.op("Activate", uid(old))
    enc = _encrypt(kmip, old, b"before rekey")
    old_material = _key_material(kmip, old)

    new = value(kmip.op("ReKey", uid(old)), "UniqueIdentifier")
    assert new != old
    new_material = _key_material(kmip, new)
    assert new_material != old_material and len(new_material) == 32

    old_links = [
        (value(lk, "LinkType"), value(lk, "LinkedObjectIdentifier"))
        for lk in children(kmip.attributes(old, "Link"), "Link")
    ]
    new_links = [
        (value(lk, "LinkType"), value(lk, "LinkedObjectIdentifier"))
        for lk in children(kmip.attributes(new, "Link"), "Link")
    ]
    assert ("ReplacementObjectLink", new) in old_links
    assert ("ReplacedObjectLink", old) in new_links

    # The user tags move to the new key; the tag now names the new key only.
    assert kmip.locate_tag(tag) == [new]
    assert kmip.state(new) == "Active"
    new_attrs = kmip.attributes(
        new, "CryptographicAlgorithm", "CryptographicLength", "CryptographicUsageMask", "Description"
    )
    assert [c["value"] for c in new_attrs["value"]] == ["AES", 256, 12, "rotated"]

    # The old key still decrypts by id; new encryptions by tag use the new key.
    assert _decrypt(kmip, old, enc) == b"before rekey"
    enc_new = kmip.op("Encrypt", uid(f'["{tag}"]'), byte_string("Data", b"after"))
    assert value(enc_new, "UniqueIdentifier") == new
    assert _decrypt(kmip, new, enc_new) == b"after"
    assert _reason(kmip, "Decrypt", *_decrypt_items(new, enc)) == "CryptographicFailure"


def test_rekey_of_a_destroyed_key_fails(kmip: Kmip) -> None:
    key = kmip.create()
    kmip.op("Destroy", uid(key))
    assert _reason(kmip, "ReKey", uid(key)) == "ObjectDestroyed"


# ----------------------------------------------------------------------------------- server operations


def test_query(kmip: Kmip) -> None:
    resp = kmip.op(
        "Query",
        enum("QueryFunction", "QueryOperations"),
        enum("QueryFunction", "QueryObjects"),
        enum("QueryFunction", "QueryServerInformation"),
    )
    operations = values(resp, "Operation")
    for op in (
        "Create",
        "Register",
        "Get",
        "GetAttributes",
        "Locate",
        "Activate",
        "Revoke",
        "Destroy",
        "Encrypt",
        "Decrypt",
        "ReKey",
        "MAC",
        "MACVerify",
        "Hash",
        "RNGRetrieve",
        "Query",
        "DiscoverVersions",
    ):
        assert op in operations, op
    assert len(operations) == len(set(operations))
    assert {"SymmetricKey", "SecretData"} <= set(values(resp, "ObjectType"))
    assert value(resp, "VendorIdentification") == "cosmian"
    assert has(resp, "ServerInformation")
    # Every listed operation is really served: none answers OperationNotSupported.
    for op in operations:
        (bi,) = kmip.batch(batch_item(op))
        assert result(bi)[1] != "OperationNotSupported", op
    only_objects = kmip.op("Query", enum("QueryFunction", "QueryObjects"))
    assert not has(only_objects, "Operation")


def test_discover_versions(kmip: Kmip) -> None:
    def versions(resp: JsonItem) -> list[tuple[int, int]]:
        return [
            (value(v, "ProtocolVersionMajor"), value(v, "ProtocolVersionMinor"))
            for v in children(resp, "ProtocolVersion")
        ]

    everything = versions(kmip.op("DiscoverVersions"))
    assert everything[0] == (2, 1)
    assert everything == sorted(everything, reverse=True)
    assert {(2, 0), (1, 4), (1, 2), (1, 0)} <= set(everything)
    asked = kmip.op(
        "DiscoverVersions",
        struct("ProtocolVersion", integer("ProtocolVersionMajor", 1), integer("ProtocolVersionMinor", 4)),
        struct("ProtocolVersion", integer("ProtocolVersionMajor", 3), integer("ProtocolVersionMinor", 0)),
        struct("ProtocolVersion", integer("ProtocolVersionMajor", 2), integer("ProtocolVersionMinor", 1)),
    )
    # Only the versions both sides support, in the server's order of preference (KMIP DiscoverVersions).
    assert versions(asked) == [(2, 1), (1, 4)]


@pytest.mark.parametrize("length", [1, 16, 33, 1000])
def test_rng_retrieve_length(kmip: Kmip, length: int) -> None:
    first = bytes.fromhex(value(kmip.op("RNGRetrieve", integer("DataLength", length)), "Data"))
    second = bytes.fromhex(value(kmip.op("RNGRetrieve", integer("DataLength", length)), "Data"))
    assert len(first) == len(second) == length
    if length >= 16:
        assert first != second


@pytest.mark.parametrize("length", [0, -1])
def test_rng_retrieve_refuses_non_positive_lengths(kmip: Kmip, length: int) -> None:
    assert _reason(kmip, "RNGRetrieve", integer("DataLength", length)) == "InvalidField"


@pytest.mark.parametrize(
    ("data", "algorithm", "digest"),
    [
        (b"abc", "SHA_256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (b"", "SHA_256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (b"abc", "SHA_1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (b"abc", "SHA_512", hashlib.sha512(b"abc").hexdigest()),
    ],
)
def test_hash_known_answers(kmip: Kmip, data: bytes, algorithm: str, digest: str) -> None:
    resp = kmip.op(
        "Hash", struct("CryptographicParameters", enum("HashingAlgorithm", algorithm)), byte_string("Data", data)
    )
    assert value(resp, "Data") == digest.upper()


def test_mac_and_mac_verify_rfc4231_case_2(kmip: Kmip) -> None:
    assert hmac.new(RFC4231_KEY, RFC4231_DATA, hashlib.sha256).digest() == RFC4231_HMAC_SHA256
    key = _register(
        kmip,
        RFC4231_KEY,
        date_time("ActivationDate", int(time.time()) - 10),
        algorithm="HMACSHA256",
        mask=0x80 | 0x100,  # MACGenerate | MACVerify
    )
    resp = kmip.op(
        "MAC",
        uid(key),
        struct("CryptographicParameters", enum("CryptographicAlgorithm", "HMACSHA256")),
        byte_string("Data", RFC4231_DATA),
    )
    assert value(resp, "UniqueIdentifier") == key
    assert bytes.fromhex(value(resp, "MACData")) == RFC4231_HMAC_SHA256
    # The key's own algorithm applies when no parameters are given.
    assert bytes.fromhex(value(kmip.op("MAC", uid(key), byte_string("Data", RFC4231_DATA)), "MACData")) == (
        RFC4231_HMAC_SHA256
    )

    def verify(data: bytes, mac: bytes) -> str:
        out = kmip.op("MACVerify", uid(key), byte_string("Data", data), byte_string("MACData", mac))
        return value(out, "ValidityIndicator")

    assert verify(RFC4231_DATA, RFC4231_HMAC_SHA256) == "Valid"
    assert verify(RFC4231_DATA + b"!", RFC4231_HMAC_SHA256) == "Invalid"
    assert verify(RFC4231_DATA, RFC4231_HMAC_SHA256[:-1] + bytes([RFC4231_HMAC_SHA256[-1] ^ 1])) == "Invalid"


def test_mac_needs_the_mac_usage(kmip: Kmip) -> None:
    key = kmip.create_bare(unique_tag())  # an AES key for Encrypt/Decrypt/Wrap
    assert _reason(kmip, "MAC", uid(key), byte_string("Data", b"x")) == "IncompatibleCryptographicUsageMask"
