"""JSON TTLV codec: the Cosmian documentation examples, the emitted form (spec/kmip.md §2, §3.3), the liberal
parser and its refusals (always KmipError(InvalidMessage), never another exception)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kms.kmip import binary, json_codec, schema
from kms.kmip.attributes import Attributes
from kms.kmip.enums import (
    CryptographicUsageMask,
    HashingAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    ResultReason,
    ResultStatus,
    State,
)
from kms.kmip.errors import KmipError
from kms.kmip.json_codec import Dialect
from kms.kmip.messages import ResponseBatchItem, ResponseHeader, ResponseMessage
from kms.kmip.payloads import (
    DecryptRequest,
    DestroyRequest,
    EncryptRequest,
    EncryptResponse,
    GetResponse,
    ProtocolVersion,
    RevokeRequest,
)
from kms.kmip.registry import operation_of_pseudo_tag
from kms.kmip.tags import Tag
from kms.kmip.ttlv import PSEUDO_BASE_RESPONSE, TTLV, ItemType

T_2024 = 1_704_164_645  # 2024-01-02T03:04:05Z

# Examples that name things this server does not implement (CoverCrypt is a Cosmian-only scheme) or that are
# wrong in the Cosmian documentation itself (tagging.md puts the KeyWrapType value AsRegistered under
# KeyFormatType): they must be refused cleanly, naming the unknown value.
UNSUPPORTED_EXAMPLES = {
    "create_03_Create.json": "CoverCrypt",
    "create_key_pair_05_CreateKeyPair.json": "CoverCrypt",
    "decrypt_03_Decrypt.json": "CoverCrypt",
    "encrypt_03_Encrypt.json": "CoverCrypt",
    "get_04_GetResponse.json": "CoverCryptSecretKey",
    "tagging_01_Export.json": "AsRegistered",
}
# Documentation response samples holding the $NOW placeholder of the OASIS test cases.
PLACEHOLDER_EXAMPLES = {
    "messages_02_ResponseMessage.json",
    "messages_04_ResponseMessage.json",
    "messages_06_ResponseMessage.json",
}


def _examples(vectors: Path) -> list[Path]:
    files = sorted((vectors / "kmip" / "json-examples").glob("*.json"))
    assert len(files) == 39
    return files


def _with_now(obj: Any) -> Any:
    """Replace the $NOW placeholder by a real time, as a test runner does."""
    if isinstance(obj, dict):
        if obj.get("value") == "$NOW":
            return {**obj, "value": "2024-01-02T03:04:05Z"}
        return {k: _with_now(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_with_now(v) for v in obj]
    return obj


def _invalid(obj: Any) -> str:
    with pytest.raises(KmipError) as info:
        json_codec.from_json(obj)
    assert info.value.reason == ResultReason.InvalidMessage, info.value
    return info.value.message


def _invalid_text(text: str | bytes) -> str:
    with pytest.raises(KmipError) as info:
        json_codec.loads(text)
    assert info.value.reason == ResultReason.InvalidMessage, info.value
    return info.value.message


def _keys_in_order(obj: dict[str, Any]) -> None:
    assert list(obj) == ["tag", "type", "value"], obj
    if obj["type"] == "Structure":
        for c in obj["value"]:
            _keys_in_order(c)


def _scalar(tag: str, type_: str, value: Any) -> TTLV:
    return json_codec.from_json({"tag": tag, "type": type_, "value": value})


# ---------------------------------------------------------------------------------------------- examples


def test_documentation_examples_parse_and_round_trip(vectors: Path) -> None:
    parsed = 0
    for path in _examples(vectors):
        if path.name in UNSUPPORTED_EXAMPLES:
            continue
        obj = json.loads(path.read_text())
        if path.name in PLACEHOLDER_EXAMPLES:
            obj = _with_now(obj)
        item = json_codec.from_json(obj)
        for dialect in (Dialect.OASIS, Dialect.COSMIAN):
            emitted = json.loads(json_codec.dumps(item, dialect))
            _keys_in_order(emitted)
            assert json_codec.from_json(emitted) == item, (path.name, dialect)
        parsed += 1
    assert parsed == 39 - len(UNSUPPORTED_EXAMPLES)


@pytest.mark.parametrize(("name", "unknown"), sorted(UNSUPPORTED_EXAMPLES.items()))
def test_unsupported_examples_are_refused_naming_the_value(vectors: Path, name: str, unknown: str) -> None:
    obj = json.loads((vectors / "kmip" / "json-examples" / name).read_text())
    assert repr(unknown) in _invalid(obj)


def test_destroy_example_with_the_remove_flag_parses(vectors: Path) -> None:
    """Found broken (unknown tag 'Remove') and fixed during this test run."""
    obj = json.loads((vectors / "kmip" / "json-examples" / "destroy_01_Destroy.json").read_text())
    item = json_codec.from_json(obj)
    req = schema.decode(DestroyRequest, item)
    assert req.unique_identifier == "f54f14a3-5639-4054-8c23-54af891669db"
    assert json_codec.from_json(json.loads(json_codec.dumps(item))) == item


def test_documentation_examples_mean_what_they_say(vectors: Path) -> None:
    base = vectors / "kmip" / "json-examples"

    def load(name: str) -> TTLV:
        return json_codec.from_json(json.loads((base / name).read_text()))

    create = load("create_01_Create.json")
    assert operation_of_pseudo_tag(create.tag) == (Operation.Create, False)
    attributes = create.find(Tag.Attributes)
    assert attributes is not None
    mask = attributes.find(Tag.CryptographicUsageMask)
    assert mask is not None and mask.value == 2108
    vendor = attributes.find(Tag.Attribute)
    assert vendor is not None
    assert [(c.tag, c.value) for c in vendor.children()] == [
        (Tag.VendorIdentification, "cosmian"),
        (Tag.AttributeName, "tag"),
        (Tag.AttributeValue, '["MySymmetricKey"]'),
    ]

    encrypt_response = load("encrypt_02_EncryptResponse.json")
    assert operation_of_pseudo_tag(encrypt_response.tag) == (Operation.Encrypt, True)
    resp = schema.decode(EncryptResponse, encrypt_response)
    assert resp.iv_counter_nonce == bytes.fromhex("DBDD622A64F7D65E75894B1B")
    assert len(resp.authenticated_encryption_tag or b"") == 16

    decrypt = schema.decode(DecryptRequest, load("decrypt_01_Decrypt.json"))
    assert decrypt.unique_identifier == '["MySymmetricKey"]'
    assert decrypt.data == bytes.fromhex("40D59A0735811135749A507FDEB3")
    assert decrypt.iv_counter_nonce == resp.iv_counter_nonce

    get_response = schema.decode(GetResponse, load("get_02_GetResponse.json"))
    assert get_response.object_type == ObjectType.SymmetricKey
    key = get_response.object.key_block.value().material_bytes()
    assert len(key) == 32

    v4 = load("json_ttlv_api_01_Create.json").find(Tag.Attributes)
    assert v4 is not None
    typed = schema.decode(Attributes, v4)
    assert [(v.attribute_name, v.attribute_value.type) for v in typed.vendor_attributes] == [
        ("tag", ItemType.ByteString)
    ]


# --------------------------------------------------------------------------------------------- emitting


def _emitted(item: TTLV, dialect: Dialect = Dialect.OASIS) -> dict[str, Any]:
    text = json_codec.dumps(item, dialect)
    return json.loads(text)


@pytest.mark.parametrize("dialect", [Dialect.OASIS, Dialect.COSMIAN])
def test_emit_order_is_tag_type_value(dialect: Dialect) -> None:
    item = TTLV.struct(
        Tag.Attributes,
        [
            TTLV(Tag.CryptographicLength, ItemType.Integer, 256),
            TTLV(Tag.Name, ItemType.Structure, [TTLV(Tag.NameValue, ItemType.TextString, "n")]),
            TTLV(Tag.Sensitive, ItemType.Boolean, False),
        ],
    )
    text = json_codec.dumps(item, dialect)
    assert text.startswith(
        '{"tag":"Attributes","type":"Structure","value":[{"tag":"CryptographicLength","type":"Integer","value":256}'
    )
    _keys_in_order(json.loads(text))


def test_emitted_scalar_forms() -> None:
    cases: list[tuple[TTLV, Any]] = [
        (TTLV(Tag.Data, ItemType.ByteString, bytes.fromhex("00abcdef")), "00ABCDEF"),
        (TTLV(Tag.Data, ItemType.ByteString, b""), ""),
        (TTLV(Tag.UsageLimitsCount, ItemType.LongInteger, 255), "0x00000000000000FF"),
        (TTLV(Tag.UsageLimitsCount, ItemType.LongInteger, -2), "0xFFFFFFFFFFFFFFFE"),
        (TTLV(Tag.UsageLimitsCount, ItemType.LongInteger, 2**62), "0x4000000000000000"),
        (TTLV(Tag.ActivationDate, ItemType.DateTime, T_2024), "2024-01-02T03:04:05Z"),
        (TTLV(Tag.ActivationDate, ItemType.DateTime, 0), "1970-01-01T00:00:00Z"),
        (TTLV(Tag.ObjectType, ItemType.Enumeration, ObjectType.SymmetricKey), "SymmetricKey"),
        (TTLV(Tag.Operation, ItemType.Enumeration, Operation.Encrypt), "Encrypt"),
        (TTLV(Tag.ObjectType, ItemType.Enumeration, 0x8000_0123), "0x80000123"),
        (TTLV(Tag.CryptographicUsageMask, ItemType.Integer, 12), 12),
        (TTLV(Tag.Sensitive, ItemType.Boolean, True), True),
        (TTLV(Tag.NameValue, ItemType.TextString, 'é"x'), 'é"x'),
        (TTLV(Tag.LeaseTime, ItemType.Interval, 3600), 3600),
    ]
    for item, expected in cases:
        out = _emitted(item)
        assert out["type"] == item.type.name
        assert out["value"] == expected, (item, out)
        assert json_codec.from_json(out) == item


def test_emitted_big_integer_is_sign_extended_upper_hex() -> None:
    out = _emitted(TTLV(Tag.Modulus, ItemType.BigInteger, 0xABCDEF))
    assert out["value"] == "0x0000000000ABCDEF"
    neg = _emitted(TTLV(Tag.Modulus, ItemType.BigInteger, -1))
    assert neg["value"] == "0xFFFFFFFFFFFFFFFF"
    for v in (0xABCDEF, -1, 2**64, -(2**64), 2**63):
        assert json_codec.from_json(_emitted(TTLV(Tag.Modulus, ItemType.BigInteger, v))).value == v


def test_emitted_hex_is_upper_case_everywhere() -> None:
    item = TTLV.struct(
        Tag.Attributes,
        [
            TTLV(Tag.Data, ItemType.ByteString, bytes(range(256))),
            TTLV(Tag.UsageLimitsCount, ItemType.LongInteger, 0xABCDEF),
            TTLV(Tag.Modulus, ItemType.BigInteger, 0xFEDCBA),
        ],
    )
    text = json_codec.dumps(item, Dialect.OASIS)
    for hex_value in re.findall(r'"value":"(0x)?([0-9A-Fa-f]+)"', text):
        assert hex_value[1] == hex_value[1].upper()


def test_cosmian_dialect_spellings() -> None:
    """spec/kmip.md §6: the Cosmian clients need IvCounterNonce and the object under "Object"."""
    enc = schema.encode(
        EncryptResponse(
            unique_identifier="u",
            data=b"\x01",
            iv_counter_nonce=b"\x02" * 12,
            authenticated_encryption_tag=b"\x03" * 16,
        ),
        PSEUDO_BASE_RESPONSE + Operation.Encrypt,
    )
    cosmian = _emitted(enc, Dialect.COSMIAN)
    assert cosmian["tag"] == "EncryptResponse"
    assert [c["tag"] for c in cosmian["value"]] == [
        "UniqueIdentifier",
        "Data",
        "IvCounterNonce",
        "AuthenticatedEncryptionTag",
    ]
    oasis = _emitted(enc, Dialect.OASIS)
    assert [c["tag"] for c in oasis["value"]][2] == "IVCounterNonce"

    key = TTLV(
        Tag.SymmetricKey,
        ItemType.Structure,
        [TTLV(Tag.KeyBlock, ItemType.Structure, [TTLV(Tag.KeyFormatType, ItemType.Enumeration, 1)])],
    )
    get = TTLV(
        PSEUDO_BASE_RESPONSE + Operation.Get,
        ItemType.Structure,
        [
            TTLV(Tag.ObjectType, ItemType.Enumeration, ObjectType.SymmetricKey),
            TTLV(Tag.UniqueIdentifier, ItemType.TextString, "u"),
            key,
        ],
    )
    assert [c["tag"] for c in _emitted(get, Dialect.COSMIAN)["value"]] == ["ObjectType", "UniqueIdentifier", "Object"]
    # ...and "Object" reads back as the object, given the sibling ObjectType.
    decoded = schema.decode(GetResponse, json_codec.from_json(_emitted(get, Dialect.COSMIAN)))
    assert decoded.object.key_block.key_format_type == 1


def _failed_response(reason: ResultReason) -> TTLV:
    return schema.encode(
        ResponseMessage(
            response_header=ResponseHeader(protocol_version=ProtocolVersion(2, 1), time_stamp=T_2024, batch_count=1),
            batch_item=[
                ResponseBatchItem(
                    operation=Operation.Get,
                    result_status=ResultStatus.OperationFailed,
                    result_reason=reason,
                    result_message="m",
                )
            ],
        )
    )


def test_oasis_dialect_emits_oasis_enumeration_names() -> None:
    out = json_codec.dumps(_failed_response(ResultReason.ItemNotFound), Dialect.OASIS)
    assert '"value":"ItemNotFound"' in out
    digest = TTLV(Tag.HashingAlgorithm, ItemType.Enumeration, HashingAlgorithm.SHA_256)
    assert _emitted(digest, Dialect.OASIS)["value"] == "SHA_256"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (TTLV(Tag.ResultReason, ItemType.Enumeration, ResultReason.ItemNotFound), "Item_Not_Found"),
        (TTLV(Tag.ResultReason, ItemType.Enumeration, ResultReason.ResponseTooLarge), "Response_Too_Large"),
        (TTLV(Tag.HashingAlgorithm, ItemType.Enumeration, HashingAlgorithm.SHA_256), "SHA256"),
        (TTLV(Tag.KeyFormatType, ItemType.Enumeration, KeyFormatType.PKCS_1), "PKCS1"),
        (TTLV(Tag.State, ItemType.Enumeration, State.DestroyedCompromised), "Destroyed_Compromised"),
    ],
    ids=["ItemNotFound", "ResponseTooLarge", "SHA_256", "PKCS_1", "DestroyedCompromised"],
)
def test_cosmian_dialect_emits_the_spellings_cosmian_clients_parse(item: TTLV, expected: str) -> None:
    # The Cosmian clients match enumeration names exactly (strum variant names), so /kmip/2_1 must answer with
    # their spellings (spec/kmip.md §6: the dialect of the JSON endpoints those clients use); both parse back.
    assert _emitted(item, Dialect.COSMIAN)["value"] == expected
    assert json_codec.from_json(_emitted(item, Dialect.COSMIAN)) == item


# ---------------------------------------------------------------------------------------------- parsing


def test_hex_tags() -> None:
    assert _scalar("0x420094", "TextString", "x") == TTLV(Tag.UniqueIdentifier, ItemType.TextString, "x")
    assert _scalar("0x42002a", "Integer", 1).tag == Tag.CryptographicLength
    ext = json_codec.from_json({"tag": "0x54FFFF", "name": "SomeExtension", "type": "TextString", "value": "e"})
    assert ext == TTLV(0x54FFFF, ItemType.TextString, "e")
    assert binary.decode(binary.encode(ext)) == ext


def test_masks_by_name_and_hex() -> None:
    encrypt_decrypt = int(CryptographicUsageMask.Encrypt | CryptographicUsageMask.Decrypt)
    assert encrypt_decrypt == 12
    assert _scalar("CryptographicUsageMask", "Integer", "Encrypt|Decrypt").value == 12
    assert _scalar("CryptographicUsageMask", "Integer", "Encrypt|0x00000008").value == 12
    assert _scalar("CryptographicUsageMask", "Integer", "Sign").value == int(CryptographicUsageMask.Sign)
    assert _scalar("CryptographicUsageMask", "Integer", "Encrypt|Decrypt|WrapKey|UnwrapKey|KeyAgreement").value == 2108
    assert _scalar("CryptographicUsageMask", "Integer", "0x0000000C").value == 12
    assert _scalar("CryptographicUsageMask", "Integer", 12).value == 12


def test_integer_hex_forms() -> None:
    assert _scalar("CryptographicLength", "Integer", "0x00000100").value == 256
    assert _scalar("CryptographicLength", "Integer", "0xFFFFFFFF").value == -1
    assert _scalar("CryptographicLength", "Integer", "0x0000000000000100").value == 256


def test_hex_boolean() -> None:
    assert _scalar("Sensitive", "Boolean", "0x0000000000000001").value is True
    assert _scalar("Sensitive", "Boolean", "0x0000000000000000").value is False
    assert _scalar("Sensitive", "Boolean", True).value is True


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05+00:00",
        "2024-01-02T05:04:05+02:00",
        "2024-01-01T22:04:05-05:00",
        "2024-01-02T03:04:05.999Z",
        "2024-01-02T05:04:05.123456+02:00",
        "2024-01-02T03:04:05",
        "0x0000000065937D25",
    ],
)
def test_datetimes(text: str) -> None:
    assert _scalar("ActivationDate", "DateTime", text).value == T_2024


def test_both_nonce_spellings() -> None:
    for name in ("IVCounterNonce", "IvCounterNonce"):
        assert _scalar(name, "ByteString", "00ff") == TTLV(Tag.IVCounterNonce, ItemType.ByteString, b"\x00\xff")
    body = {
        "tag": "Decrypt",
        "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": "u"},
            {"tag": "IvCounterNonce", "type": "ByteString", "value": "6E" * 12},
        ],
    }
    assert schema.decode(DecryptRequest, json_codec.from_json(body)).iv_counter_nonce == b"n" * 12


def test_structure_type_may_be_left_out_and_keys_come_in_any_order() -> None:
    with_type = {
        "tag": "Attributes",
        "type": "Structure",
        "value": [{"tag": "CryptographicLength", "type": "Integer", "value": 128}],
    }
    without = {"value": [{"value": 128, "type": "Integer", "tag": "CryptographicLength"}], "tag": "Attributes"}
    assert json_codec.from_json(without) == json_codec.from_json(with_type)
    assert json_codec.from_json({"tag": "Attributes", "value": None}) == TTLV(Tag.Attributes, ItemType.Structure, [])


def test_enumeration_forms_and_spellings() -> None:
    for v in ("SymmetricKey", "0x00000002", 2):
        assert _scalar("ObjectType", "Enumeration", v).value == ObjectType.SymmetricKey
    for v in ("ItemNotFound", "Item_Not_Found"):
        assert _scalar("ResultReason", "Enumeration", v).value == ResultReason.ItemNotFound
    for v in ("SHA_256", "SHA256"):
        assert _scalar("HashingAlgorithm", "Enumeration", v).value == HashingAlgorithm.SHA_256


def test_revocation_reason_as_bare_text_or_structure() -> None:
    bare = {
        "tag": "Revoke",
        "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": "u"},
            {"tag": "RevocationReason", "type": "TextString", "value": "r"},
        ],
    }
    req = schema.decode(RevokeRequest, json_codec.from_json(bare))
    assert req.revocation_reason.revocation_message == "r"
    structured = {
        "tag": "Revoke",
        "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": "u"},
            {
                "tag": "RevocationReason",
                "value": [{"tag": "RevocationReasonCode", "type": "Enumeration", "value": "KeyCompromise"}],
            },
        ],
    }
    req = schema.decode(RevokeRequest, json_codec.from_json(structured))
    assert req.revocation_reason.revocation_reason_code.name == "KeyCompromise"


def test_cosmian_encrypt_body_of_the_python_client() -> None:
    """spec/kmip.md §6, verbatim."""
    body = (
        '{"tag":"Encrypt","type":"Structure","value":[{"tag":"UniqueIdentifier","type":"TextString",'
        '"value":"abc"},{"tag":"Data","type":"ByteString","value":"68656C6C6F"}]}'
    )
    req = schema.decode(EncryptRequest, json_codec.loads(body))
    assert (req.unique_identifier, req.data, req.cryptographic_parameters) == ("abc", b"hello", None)


# ---------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "text",
    [b"{", b"", b"not json", b'{"tag": "Get", "value": [}', b"\xff\xfe", b'{"tag":"Get","value":[]} x'],
)
def test_malformed_json(text: bytes) -> None:
    _invalid_text(text)


def test_not_an_item() -> None:
    for obj in (["a"], "Get", 3, None, {"type": "Integer", "value": 1}, {"tag": 5, "type": "Integer", "value": 1}):
        _invalid(obj)


def test_unknown_tag_name() -> None:
    assert "NoSuchTag" in _invalid({"tag": "NoSuchTag", "type": "Integer", "value": 1})
    _invalid({"tag": "0x42", "type": "Integer", "value": 1})
    _invalid({"tag": "0x4200941", "type": "Integer", "value": 1})


def test_unknown_type_and_missing_value() -> None:
    _invalid({"tag": "CryptographicLength", "type": "Int", "value": 1})
    _invalid({"tag": "CryptographicLength", "type": "Integer"})
    _invalid({"tag": "Attributes", "value": {"a": 1}})


def test_unknown_enum_name() -> None:
    assert "NoSuchType" in _invalid({"tag": "ObjectType", "type": "Enumeration", "value": "NoSuchType"})
    _invalid({"tag": "CryptographicUsageMask", "type": "Integer", "value": "Encrypt|Bogus"})
    _invalid({"tag": "ObjectType", "type": "Enumeration", "value": "0xZZ"})


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("Integer", "abc"),
        ("Integer", 1.5),
        ("Integer", True),
        ("Integer", None),
        ("Integer", [1]),
        ("Integer", "0x"),
        ("Integer", "12"),
        ("LongInteger", "abc"),
        ("LongInteger", 1.5),
        ("BigInteger", "12"),
        ("BigInteger", "0xZZ"),
        ("Enumeration", 1.5),
        ("Enumeration", True),
        ("Boolean", "true"),
        ("Boolean", 1),
        ("Boolean", "0x0000000000000002"),
        ("TextString", 5),
        ("TextString", None),
        ("ByteString", "zz"),
        ("ByteString", "abc"),
        ("ByteString", 12),
        ("DateTime", "yesterday"),
        ("DateTime", "2024-13-45T00:00:00Z"),
        ("DateTime", 1.5),
        ("Interval", "abc"),
        ("Interval", -1),
        ("DateTimeExtended", "abc"),
    ],
)
def test_wrong_json_type_for_kmip_type(type_: str, value: Any) -> None:
    _invalid({"tag": "Data", "type": type_, "value": value})


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("Integer", 2**31),
        ("Integer", -(2**31) - 1),
        ("Integer", "0x0000000100000000"),
        ("Enumeration", -1),
        ("Enumeration", 2**32),
        ("Interval", 2**32),
        ("LongInteger", 2**63),
        ("LongInteger", -(2**63) - 1),
    ],
)
def test_out_of_range_numbers(type_: str, value: int | str) -> None:
    _invalid({"tag": "CryptographicLength", "type": type_, "value": value})


def test_range_limits_are_accepted() -> None:
    assert _scalar("CryptographicLength", "Integer", 2**31 - 1).value == 2**31 - 1
    assert _scalar("CryptographicLength", "Integer", -(2**31)).value == -(2**31)
    assert _scalar("UsageLimitsCount", "LongInteger", 2**63 - 1).value == 2**63 - 1
    assert _scalar("LeaseTime", "Interval", 2**32 - 1).value == 2**32 - 1


def test_structures_nested_deeper_than_32_are_refused() -> None:
    obj: dict[str, Any] = {"tag": "CryptographicLength", "type": "Integer", "value": 1}
    for _ in range(40):
        obj = {"tag": "Attributes", "value": [obj]}
    _invalid(obj)


@pytest.mark.parametrize("text", ["0x-5", "0x 5"])
def test_signed_or_spaced_big_integer_hex_is_invalid_message(text: str) -> None:
    _invalid({"tag": "Modulus", "type": "BigInteger", "value": text})


def test_deeply_nested_json_text_is_invalid_message() -> None:
    _invalid_text("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("raw", ["0x7FFFFFFFFFFFFFFF", "0x8000000000000000"])
def test_datetimes_outside_the_calendar_are_refused(raw: str) -> None:
    """A DateTime that parsed but could not be emitted would poison the object it is stored on."""
    _invalid({"tag": "ActivationDate", "type": "DateTime", "value": raw})




@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00Z",
        "0999-12-31T23:59:59Z",
        "1000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
    ],
)
def test_datetimes_at_the_calendar_limits_round_trip(text: str) -> None:
    item = _scalar("ActivationDate", "DateTime", text)
    assert _emitted(item)["value"] == text
    assert json_codec.from_json(_emitted(item)) == item
