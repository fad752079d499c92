"""The Cosmian JSON dialect on POST /kmip/2_1, against a real server.

The request bodies of spec/kmip.md §6 (what the `cosmian_kms` Python client sends) are used verbatim, only the
test values replaced (id, tag, data); then the documentation examples of vectors/kmip/json-examples. Every test
uses its own tag, so tests can share the session server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.server.kmip_http import (
    JsonItem,
    Kmip,
    byte_string,
    child,
    children,
    find_deep,
    has,
    struct,
    tag_attribute,
    tags_id,
    text,
    uid,
    unique_tag,
    value,
    values,
)
from tests.support.server import ServerProcess

# spec/kmip.md §6, verbatim; the test values "abc", "68656C6C6F", ... are replaced by _fill().
CREATE = (
    '{"tag":"Create","type":"Structure","value":[{"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"},'
    '{"tag":"Attributes","type":"Structure","value":[{"tag":"CryptographicAlgorithm","type":"Enumeration",'
    '"value":"AES"},{"tag":"CryptographicLength","type":"Integer","value":256},{"tag":"CryptographicUsageMask",'
    '"type":"Integer","value":2108},{"tag":"KeyFormatType","type":"Enumeration","value":"TransparentSymmetricKey"},'
    '{"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"},{"tag":"Sensitive","type":"Boolean",'
    '"value":false},{"tag":"VendorAttributes","type":"Structure","value":[{"tag":"VendorAttributes",'
    '"type":"Structure","value":[{"tag":"VendorIdentification","type":"TextString","value":"cosmian"},'
    '{"tag":"AttributeName","type":"TextString","value":"tag"},{"tag":"AttributeValue","type":"ByteString",'
    '"value":"5B227431225D"}]}]}]}]}'
)
ENCRYPT = (
    '{"tag":"Encrypt","type":"Structure","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"abc"},'
    '{"tag":"Data","type":"ByteString","value":"68656C6C6F"}]}'
)
DECRYPT = (
    '{"tag":"Decrypt","type":"Structure","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"abc"},'
    '{"tag":"Data","type":"ByteString","value":"7878787878787878787878787878787878787878"},{"tag":"IvCounterNonce",'
    '"type":"ByteString","value":"6E6E6E6E6E6E6E6E6E6E6E6E"},{"tag":"AuthenticatedEncryptionTag",'
    '"type":"ByteString","value":"74747474747474747474747474747474"}]}'
)
GET = (
    '{"tag":"Get","type":"Structure","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"abc"},'
    '{"tag":"KeyWrapType","type":"Enumeration","value":"AsRegistered"}]}'
)
REVOKE = (
    '{"tag":"Revoke","type":"Structure","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"abc"},'
    '{"tag":"RevocationReason","type":"TextString","value":"r"}]}'
)
DESTROY = '{"tag":"Destroy","type":"Structure","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"abc"}]}'


def _json_string(s: str) -> str:
    return json.dumps(s)[1:-1]


def _fill(template: str, **values: str) -> str:
    """Replace a test value of a §6 body (matched with its quotes, so nothing else can be hit)."""
    out = template
    for old, new in values.items():
        quoted = f'"value":"{old}"'
        assert quoted in out, old
        out = out.replace(quoted, f'"value":"{_json_string(new)}"')
    return out


def _create_body(tag: str) -> str:
    return _fill(CREATE, **{"5B227431225D": json.dumps([tag]).encode().hex().upper()})


def _examples(vectors: Path) -> Path:
    return vectors / "kmip" / "json-examples"


def _example(vectors: Path, name: str) -> JsonItem:
    return json.loads((_examples(vectors) / name).read_text())


def _replace_value(obj: Any, old: str, new: str) -> Any:
    """The example with every TextString value `old` replaced by `new`."""
    if isinstance(obj, dict):
        if obj.get("value") == old:
            return {**obj, "value": new}
        return {k: _replace_value(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace_value(v, old, new) for v in obj]
    return obj


@pytest.fixture(scope="module")
def kmip(kms_server: ServerProcess) -> Kmip:
    return Kmip(kms_server.url)


def _key_material(get_response: JsonItem) -> bytes:
    assert get_response["tag"] == "GetResponse"
    obj = child(get_response, "Object")
    key_block = child(obj, "KeyBlock")
    assert value(key_block, "KeyFormatType") == "Raw"
    key_value = child(key_block, "KeyValue")
    material = bytes.fromhex(value(key_value, "KeyMaterial"))
    assert len(material) == 32
    return material


# ------------------------------------------------------------------------------------ Python client bodies


def test_python_client_round_trip_by_id_and_by_tag(kmip: Kmip) -> None:
    tag = unique_tag()
    created = kmip.call(_create_body(tag))
    assert created["tag"] == "CreateResponse"
    assert [c["tag"] for c in created["value"]] == ["ObjectType", "UniqueIdentifier"]
    assert value(created, "ObjectType") == "SymmetricKey"
    key_id = value(created, "UniqueIdentifier")
    assert len(key_id) == 36 and key_id.count("-") == 4  # a UUID

    # Get: the object under "Object", Raw key material of 32 bytes.
    got = kmip.call(_fill(GET, abc=key_id))
    assert [c["tag"] for c in got["value"]] == ["ObjectType", "UniqueIdentifier", "Object"]
    assert value(got, "UniqueIdentifier") == key_id
    key = _key_material(got)

    for selector in (key_id, tags_id(tag)):
        plaintext = os.urandom(37)
        enc = kmip.call(_fill(ENCRYPT, abc=selector, **{"68656C6C6F": plaintext.hex().upper()}))
        assert enc["tag"] == "EncryptResponse"
        assert [c["tag"] for c in enc["value"]] == [
            "UniqueIdentifier",
            "Data",
            "IvCounterNonce",
            "AuthenticatedEncryptionTag",
        ]
        assert value(enc, "UniqueIdentifier") == key_id
        nonce = bytes.fromhex(value(enc, "IvCounterNonce"))
        auth_tag = bytes.fromhex(value(enc, "AuthenticatedEncryptionTag"))
        ciphertext = bytes.fromhex(value(enc, "Data"))
        assert (len(nonce), len(auth_tag), len(ciphertext)) == (12, 16, len(plaintext))
        # Default for an AES key: AES-GCM with the returned nonce and tag, checked independently.
        assert AESGCM(key).decrypt(nonce, ciphertext + auth_tag, None) == plaintext

        dec = kmip.call(
            _fill(
                DECRYPT,
                abc=selector,
                **{
                    "7878787878787878787878787878787878787878": ciphertext.hex().upper(),
                    "6E6E6E6E6E6E6E6E6E6E6E6E": nonce.hex().upper(),
                    "74747474747474747474747474747474": auth_tag.hex().upper(),
                },
            )
        )
        assert dec["tag"] == "DecryptResponse"
        assert [c["tag"] for c in dec["value"]] == ["UniqueIdentifier", "Data"]
        assert value(dec, "UniqueIdentifier") == key_id
        assert bytes.fromhex(value(dec, "Data")) == plaintext

    revoked = kmip.call(_fill(REVOKE, abc=key_id))
    assert revoked == {
        "tag": "RevokeResponse",
        "type": "Structure",
        "value": [{"tag": "UniqueIdentifier", "type": "TextString", "value": key_id}],
    }
    reason = child(child(kmip.call(struct("GetAttributes", uid(key_id))), "Attributes"), "RevocationReason")
    assert value(reason, "RevocationReasonCode") == "Unspecified"
    assert value(reason, "RevocationMessage") == "r"

    destroyed = kmip.call(_fill(DESTROY, abc=key_id))
    assert destroyed == {
        "tag": "DestroyResponse",
        "type": "Structure",
        "value": [{"tag": "UniqueIdentifier", "type": "TextString", "value": key_id}],
    }
    attrs = child(kmip.call(struct("GetAttributes", uid(key_id))), "Attributes")
    assert value(attrs, "State") == "Destroyed"
    assert "not found" in kmip.fail(_fill(ENCRYPT, abc=tags_id(tag))).lower()


def test_the_v4_tag_attribute_sets_the_tags(kmip: Kmip) -> None:
    tag = unique_tag()
    key_id = value(kmip.call(_create_body(tag)), "UniqueIdentifier")
    assert kmip.locate_tag(tag) == [key_id]
    attrs = child(kmip.call(struct("GetAttributes", uid(key_id))), "Attributes")
    tag_values = [
        value(a, "AttributeValue") for a in children(attrs, "Attribute") if value(a, "AttributeName") == "tag"
    ]
    assert len(tag_values) == 1
    assert set(json.loads(tag_values[0])) == {tag, "_kk"}
    # Emitted in the v5 form: the tag list as a TextString, never the v4 ByteString wrapper.
    assert not has(attrs, "VendorAttributes")
    assert all(
        child(a, "AttributeValue")["type"] == "TextString"
        for a in children(attrs, "Attribute")
        if value(a, "AttributeName") == "tag"
    )


def test_bare_create_is_active_and_sensitive_false_is_kept(kmip: Kmip) -> None:
    key_id = value(kmip.call(_create_body(unique_tag())), "UniqueIdentifier")
    attrs = child(kmip.call(struct("GetAttributes", uid(key_id))), "Attributes")
    assert value(attrs, "State") == "Active"
    assert value(attrs, "Sensitive") is False
    assert value(attrs, "CryptographicUsageMask") == 2108


def test_encrypt_and_decrypt_by_tag_match_only_their_key(kmip: Kmip) -> None:
    tag_a, tag_b = unique_tag(), unique_tag()
    id_a = value(kmip.call(_create_body(tag_a)), "UniqueIdentifier")
    id_b = value(kmip.call(_create_body(tag_b)), "UniqueIdentifier")
    assert id_a != id_b
    enc = kmip.call(_fill(ENCRYPT, abc=tags_id(tag_b)))
    assert value(enc, "UniqueIdentifier") == id_b
    fields = {
        "7878787878787878787878787878787878787878": value(enc, "Data"),
        "6E6E6E6E6E6E6E6E6E6E6E6E": value(enc, "IvCounterNonce"),
        "74747474747474747474747474747474": value(enc, "AuthenticatedEncryptionTag"),
    }
    assert bytes.fromhex(value(kmip.call(_fill(DECRYPT, abc=tags_id(tag_b), **fields)), "Data")) == b"hello"
    # The other key cannot open it: the GCM tag check fails.
    assert "CryptographicFailure" in kmip.fail(_fill(DECRYPT, abc=tags_id(tag_a), **fields))


# ------------------------------------------------------------------------------------ documentation examples


def test_doc_create_v5_vendor_attribute_form(kmip: Kmip, vectors: Path) -> None:
    tag = unique_tag()
    body = _replace_value(_example(vectors, "create_01_Create.json"), '["MySymmetricKey"]', tags_id(tag))
    assert body != _example(vectors, "create_01_Create.json")
    created = kmip.call(body)
    expected_shape = _example(vectors, "create_02_CreateResponse.json")
    assert [c["tag"] for c in created["value"]] == [c["tag"] for c in expected_shape["value"]]
    assert [c["type"] for c in created["value"]] == [c["type"] for c in expected_shape["value"]]
    assert value(created, "ObjectType") == "SymmetricKey"
    assert kmip.locate_tag(tag) == [value(created, "UniqueIdentifier")]


def test_doc_create_v4_vendor_attribute_form(kmip: Kmip, vectors: Path) -> None:
    body = _example(vectors, "json_ttlv_api_01_Create.json")
    (attribute_value,) = find_deep(body, "AttributeValue")
    assert attribute_value["type"] == "ByteString"
    old_tags = json.loads(bytes.fromhex(attribute_value["value"]))
    tag = unique_tag()
    body = _replace_value(body, attribute_value["value"], json.dumps([tag]).encode().hex().upper())
    created = kmip.call(body)
    key_id = value(created, "UniqueIdentifier")
    assert kmip.locate_tag(tag) == [key_id]
    assert old_tags and tag not in old_tags


def test_doc_encrypt_then_decrypt_by_tag(kmip: Kmip, vectors: Path) -> None:
    tag = unique_tag()
    key_id = kmip.create_bare(tag)
    encrypt = _replace_value(_example(vectors, "encrypt_01_Encrypt.json"), '["MySymmetricKey"]', tags_id(tag))
    enc = kmip.call(encrypt)
    sample = _example(vectors, "encrypt_02_EncryptResponse.json")
    assert [c["tag"] for c in enc["value"]] == [
        "UniqueIdentifier",
        "Data",
        "IvCounterNonce",  # the Cosmian clients need this spelling (spec/kmip.md §6)
        "AuthenticatedEncryptionTag",
    ]
    assert [c["type"] for c in enc["value"]] == [c["type"] for c in sample["value"]]
    assert value(enc, "UniqueIdentifier") == key_id
    plaintext = bytes.fromhex(value(_example(vectors, "encrypt_01_Encrypt.json"), "Data"))
    assert plaintext == b"Hello, world!\n"
    assert len(bytes.fromhex(value(enc, "Data"))) == len(plaintext)

    # decrypt_01 with the sample's values replaced by ours (the sample was made with another key).
    decrypt = _example(vectors, "decrypt_01_Decrypt.json")
    decrypt = _replace_value(decrypt, '["MySymmetricKey"]', tags_id(tag))
    for name in ("Data", "IVCounterNonce", "AuthenticatedEncryptionTag"):
        ours = value(enc, "IvCounterNonce" if name == "IVCounterNonce" else name)
        decrypt = _replace_value(decrypt, value(decrypt, name), ours)
    dec = kmip.call(decrypt)
    sample_dec = _example(vectors, "decrypt_02_DecryptResponse.json")
    assert [c["tag"] for c in dec["value"]] == [c["tag"] for c in sample_dec["value"]]
    assert bytes.fromhex(value(dec, "Data")) == bytes.fromhex(value(sample_dec, "Data")) == plaintext


def test_doc_examples_are_self_consistent(vectors: Path) -> None:
    """encrypt_02 and decrypt_01 carry the same ciphertext, nonce and tag: the pair we replay above."""
    enc = _example(vectors, "encrypt_02_EncryptResponse.json")
    dec = _example(vectors, "decrypt_01_Decrypt.json")
    for name in ("Data", "IVCounterNonce", "AuthenticatedEncryptionTag"):
        assert value(enc, name) == value(dec, name)


def test_doc_get_response_shape(kmip: Kmip, vectors: Path) -> None:
    key_id = kmip.create_bare(unique_tag())
    got = kmip.call(_replace_value(_example(vectors, "get_01_Get.json"), "[my_symmetric_key]", key_id))
    sample = _example(vectors, "get_02_GetResponse.json")
    assert [c["tag"] for c in got["value"]] == [c["tag"] for c in sample["value"]]
    sample_block = child(child(sample, "Object"), "KeyBlock")
    block = child(child(got, "Object"), "KeyBlock")
    assert [c["tag"] for c in block["value"]] == [c["tag"] for c in sample_block["value"]]
    key_value = child(block, "KeyValue")
    assert [c["tag"] for c in key_value["value"]] == [c["tag"] for c in child(sample_block, "KeyValue")["value"]]
    _key_material(got)
    assert value(block, "CryptographicAlgorithm") == "AES"
    assert value(block, "CryptographicLength") == 256


def test_doc_get_with_a_malformed_tag_list_is_a_clean_not_found(kmip: Kmip, vectors: Path) -> None:
    """get_01 names "[my_symmetric_key]", which is not a JSON list: a plain id that does not exist."""
    assert "not found" in kmip.fail(_example(vectors, "get_01_Get.json")).lower()


def test_doc_locate_by_tag(kmip: Kmip, vectors: Path) -> None:
    tag = unique_tag()
    key_id = kmip.create_bare(tag)
    located = kmip.call(_example(vectors, "locate_01_Locate.json"))
    sample = _example(vectors, "locate_02_LocateResponse.json")
    assert located["tag"] == sample["tag"] == "LocateResponse"
    ids = values(located, "UniqueIdentifier")
    assert key_id in ids
    assert value(located, "LocatedItems") == len(ids)
    assert located["value"][0]["tag"] == "LocatedItems"

    mine = kmip.call(_replace_value(_example(vectors, "locate_01_Locate.json"), '["_kk"]', tags_id("_kk", tag)))
    assert values(mine, "UniqueIdentifier") == [key_id]
    assert value(mine, "LocatedItems") == 1


def test_doc_tagging_export(kmip: Kmip, vectors: Path) -> None:
    tag = unique_tag()
    key_id = kmip.create_bare(tag)
    example = _replace_value(_example(vectors, "tagging_01_Export.json"), '["_kk","myTag"]', tags_id("_kk", tag))
    # The documentation puts the KeyWrapType value AsRegistered under KeyFormatType: a clear refusal.
    assert "AsRegistered" in kmip.fail(example)
    fixed = _replace_value(example, "AsRegistered", "Raw")
    exported = kmip.call(fixed)
    assert exported["tag"] == "ExportResponse"
    assert value(exported, "UniqueIdentifier") == key_id
    assert value(exported, "ObjectType") == "SymmetricKey"
    attrs = child(exported, "Attributes")
    assert value(attrs, "UniqueIdentifier") == key_id
    key = bytes.fromhex(value(child(child(child(exported, "Object"), "KeyBlock"), "KeyValue"), "KeyMaterial"))
    assert key == _key_material(kmip.call(_fill(GET, abc=key_id)))


def test_doc_destroy_with_remove_flag(kmip: Kmip, vectors: Path) -> None:
    key_id = kmip.create_bare(unique_tag())
    kmip.call(_fill(REVOKE, abc=key_id))
    example = _example(vectors, "destroy_01_Destroy.json")
    body = _replace_value(example, value(example, "UniqueIdentifier"), key_id)
    out = kmip.call(body)
    assert value(out, "UniqueIdentifier") == key_id


def test_doc_messages_on_the_json_endpoint(kmip: Kmip, vectors: Path) -> None:
    """messages_05 (a Destroy in a RequestMessage) answered by a ResponseMessage shaped like messages_06."""
    key_id = kmip.create()
    request = _replace_value(_example(vectors, "messages_05_RequestMessage.json"), "$UNIQUE_IDENTIFIER_0", key_id)
    response = kmip.call(request)
    sample = _example(vectors, "messages_06_ResponseMessage.json")
    assert response["tag"] == "ResponseMessage"
    header = child(response, "ResponseHeader")
    got_tags = [c["tag"] for c in header["value"]]
    sample_tags = [c["tag"] for c in child(sample, "ResponseHeader")["value"]]
    assert [t for t in got_tags if t in sample_tags] == sample_tags  # echoing ClientCorrelationValue is allowed
    (bi,) = children(response, "BatchItem")
    assert value(bi, "Operation") == "Destroy"
    assert value(bi, "ResultStatus") == "Success"
    assert value(child(bi, "ResponsePayload"), "UniqueIdentifier") == key_id
    assert kmip.state(key_id) == "Destroyed"


def test_responses_are_tag_type_value_ordered(kmip: Kmip) -> None:
    """Checked on the raw text, so the key order is what went over the wire."""
    key_id = kmip.create_bare(unique_tag())
    r = kmip.post_bare(struct("GetAttributes", uid(key_id)))
    assert r.status_code == 200
    assert r.text.startswith('{"tag":"GetAttributesResponse","type":"Structure","value":[{"tag":"UniqueIdentifier",')
    r = kmip.post_bare(struct("Encrypt", uid(key_id), byte_string("Data", b"x")))
    assert '{"tag":"IvCounterNonce","type":"ByteString","value":"' in r.text
    assert '"IVCounterNonce"' not in r.text


def test_text_string_revocation_message_is_kept_verbatim(kmip: Kmip) -> None:
    key_id = kmip.create_bare(unique_tag())
    message = 'compromis "é" \\ ok'
    kmip.call(struct("Revoke", uid(key_id), text("RevocationReason", message)))
    reason = child(child(kmip.call(struct("GetAttributes", uid(key_id))), "Attributes"), "RevocationReason")
    assert value(reason, "RevocationMessage") == message


def test_tags_in_create_are_found_with_both_attribute_forms(kmip: Kmip) -> None:
    tag = unique_tag()
    key_id = kmip.create_bare(tag)
    assert kmip.locate(tag_attribute(tag)) == [key_id]


@pytest.mark.parametrize(
    ("name", "unknown"),
    [
        ("create_03_Create.json", "CoverCrypt"),
        ("create_key_pair_05_CreateKeyPair.json", "CoverCrypt"),
        ("encrypt_03_Encrypt.json", "CoverCrypt"),
        ("decrypt_03_Decrypt.json", "CoverCrypt"),
    ],
)
def test_doc_covercrypt_examples_are_refused_clearly(kmip: Kmip, vectors: Path, name: str, unknown: str) -> None:
    """CoverCrypt is a Cosmian-only scheme this server does not offer: a 422 naming it, nothing created."""
    before = value(kmip.op("Locate", struct("Attributes")), "LocatedItems")
    assert unknown in kmip.fail(_example(vectors, name))
    assert value(kmip.op("Locate", struct("Attributes")), "LocatedItems") == before


def test_doc_create_key_pair_is_refused_clearly(kmip: Kmip, vectors: Path) -> None:
    """create_key_pair_01 (an ECDH/X25519 pair): key pairs are not offered yet; a clear 422, never a 500."""
    message = kmip.fail(_example(vectors, "create_key_pair_01_CreateKeyPair.json"))
    assert "CreateKeyPair" in message
