"""Binary TTLV codec: the PyKMIP captures decode, re-encode byte for byte and mean what they should; hostile input
is refused with KmipError(InvalidMessage), never another exception."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kms.kmip import binary, json_codec, schema
from kms.kmip.enums import (
    CryptographicAlgorithm,
    ObjectType,
    Operation,
    ResultReason,
    ResultStatus,
    RevocationReasonCode,
)
from kms.kmip.errors import KmipError
from kms.kmip.json_codec import Dialect
from kms.kmip.messages import RequestMessage, ResponseMessage
from kms.kmip.payloads import PAYLOADS
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType

VERSIONS = ("1.2", "1.4", "2.0")


def _session(vectors: Path, version: str) -> dict[str, Any]:
    return json.loads((vectors / "kmip" / "pykmip-binary" / f"pykmip_{version}_session.json").read_text())


def _all_captures(vectors: Path) -> list[tuple[str, bytes]]:
    out = []
    for version in VERSIONS:
        for pair in _session(vectors, version)["pairs"]:
            out.append((f"{version} {pair['step']} request", bytes.fromhex(pair["request_hex"])))
            out.append((f"{version} {pair['step']} response", bytes.fromhex(pair["response_hex"])))
    return out


def test_every_capture_decodes_and_re_encodes_to_the_same_bytes(vectors: Path) -> None:
    captures = _all_captures(vectors)
    assert len(captures) == 3 * 7 * 2
    for name, data in captures:
        item = binary.decode(data)
        assert item.tag in (Tag.RequestMessage, Tag.ResponseMessage), name
        assert binary.encode(item) == data, name
        assert binary.encoded_length(item) == len(data), name
        assert binary.message_length(data[:8]) == len(data), name


def test_every_capture_survives_the_json_codec(vectors: Path) -> None:
    for name, data in _all_captures(vectors):
        item = binary.decode(data)
        for dialect in (Dialect.OASIS, Dialect.COSMIAN):
            again = json_codec.restore_object_tags(json_codec.loads(json_codec.dumps(item, dialect)))
            assert again == item, (name, dialect)
            assert binary.encode(again) == data, (name, dialect)


def test_worked_example_of_the_spec_header(vectors: Path) -> None:
    """spec/kmip.md §7.3: the 1.4 Create request starts RequestMessage/360, RequestHeader/56, ProtocolVersion 1.4."""
    data = bytes.fromhex(_session(vectors, "1.4")["pairs"][0]["request_hex"])
    assert data[:8] == bytes.fromhex("4200780100000168")
    item = binary.decode(data)
    header = item.find(Tag.RequestHeader)
    assert header is not None
    version = header.find(Tag.ProtocolVersion)
    assert version is not None
    assert [(c.tag, c.type, c.value) for c in version.children()] == [
        (Tag.ProtocolVersionMajor, ItemType.Integer, 1),
        (Tag.ProtocolVersionMinor, ItemType.Integer, 4),
    ]
    names = [a for a in item.walk() if a.tag == Tag.AttributeName]
    assert [n.value for n in names] == [
        "Cryptographic Algorithm",
        "Cryptographic Length",
        "Cryptographic Usage Mask",
        "Name",
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_capture_operations_and_results(vectors: Path, version: str) -> None:
    pairs = _session(vectors, version)["pairs"]
    operations = []
    results = []
    for pair in pairs:
        request = schema.decode(RequestMessage, binary.decode(bytes.fromhex(pair["request_hex"])))
        response = schema.decode(ResponseMessage, binary.decode(bytes.fromhex(pair["response_hex"])))
        assert request.request_header.batch_count == len(request.batch_item) == 1
        operations.append(request.batch_item[0].operation.value)
        item = response.batch_item[0]
        results.append((item.result_status, item.result_reason))
        assert response.response_header.time_stamp > 1_700_000_000
    assert operations == [
        Operation.Create,
        Operation.Activate,
        Operation.Get,
        Operation.Encrypt,
        Operation.Get,
        Operation.Revoke,
        Operation.Destroy,
    ]
    ok = (ResultStatus.Success, None)
    assert results == [ok, ok, ok, ok, (ResultStatus.OperationFailed, ResultReason.ItemNotFound), ok, ok]


def test_kmip_2_0_payloads_decode_to_typed_structures(vectors: Path) -> None:
    pairs = _session(vectors, "2.0")["pairs"]
    decoded = []
    for pair in pairs:
        request = schema.decode(RequestMessage, binary.decode(bytes.fromhex(pair["request_hex"])))
        response = schema.decode(ResponseMessage, binary.decode(bytes.fromhex(pair["response_hex"])))
        bi, ri = request.batch_item[0], response.batch_item[0]
        op = Operation(bi.operation.value)
        req = schema.decode(PAYLOADS[op][0], bi.request_payload)
        resp = schema.decode(PAYLOADS[op][1], ri.response_payload) if ri.response_payload is not None else None
        decoded.append((op, req, resp, ri))
        # The typed structures encode back to exactly the captured payloads.
        assert schema.encode(req, Tag.RequestPayload) == bi.request_payload
        if resp is not None:
            assert schema.encode(resp, Tag.ResponsePayload) == ri.response_payload

    create = decoded[0][1]
    assert create.object_type == ObjectType.SymmetricKey
    a = create.attributes
    assert (a.cryptographic_algorithm, a.cryptographic_length, a.cryptographic_usage_mask) == (
        CryptographicAlgorithm.AES,
        256,
        12,
    )
    assert [n.name_value for n in a.name] == ["vector-key"]
    uid = decoded[0][2].unique_identifier
    assert uid == "606"

    get_resp = decoded[2][2]
    key = get_resp.object.key_block.value().material_bytes()
    assert len(key) == 32

    # Known answer: the captured AES-CBC/PKCS5 ciphertext decrypts to the captured plaintext with the captured key.
    enc_req, enc_resp = decoded[3][1], decoded[3][2]
    assert enc_req.data == b"Hello, world!"
    assert enc_req.cryptographic_parameters.random_iv is True
    decryptor = Cipher(algorithms.AES(key), modes.CBC(enc_resp.iv_counter_nonce)).decryptor()
    padded = decryptor.update(enc_resp.data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    assert unpadder.update(padded) + unpadder.finalize() == b"Hello, world!"

    not_found = decoded[4][3]
    assert not_found.result_message == "Could not locate object: 99999999"
    revoke = decoded[5][1]
    assert revoke.revocation_reason.revocation_reason_code == RevocationReasonCode.CessationOfOperation


# ------------------------------------------------------------------------------------------ hostile input


def _header(tag: int, type_code: int, length: int) -> bytes:
    return struct.pack(">I", (tag << 8) | type_code) + struct.pack(">I", length)


def _integer(tag: int, value: int) -> bytes:
    return _header(tag, 0x02, 4) + struct.pack(">i", value) + bytes(4)


def _structure(tag: int, body: bytes) -> bytes:
    return _header(tag, 0x01, len(body)) + body


def _nested(depth: int) -> bytes:
    data = _integer(Tag.BatchCount, 1)
    for _ in range(depth):
        data = _structure(Tag.Attributes, data)
    return data


def _invalid(data: bytes) -> str:
    with pytest.raises(KmipError) as info:
        binary.decode(data)
    assert info.value.reason == ResultReason.InvalidMessage
    return info.value.message


def test_well_formed_items_decode() -> None:
    """The hostile cases below differ from these by one field, so a refusal means the check works."""
    assert binary.decode(_integer(Tag.BatchCount, 7)) == TTLV(Tag.BatchCount, ItemType.Integer, 7)
    assert binary.decode(_integer(Tag.BatchCount, -2)).value == -2
    boolean = _header(Tag.Sensitive, 0x06, 8) + struct.pack(">q", 1)
    assert binary.decode(boolean).value is True
    raw = "été".encode()
    assert binary.decode(_header(Tag.NameValue, 0x07, len(raw)) + raw + bytes(3)).value == "été"
    assert binary.decode(_nested(32)).tag == Tag.Attributes
    empty = binary.decode(_structure(Tag.Attributes, b""))
    assert empty == TTLV(Tag.Attributes, ItemType.Structure, [])


@pytest.mark.parametrize("size", [0, 1, 7])
def test_truncated_header(size: int) -> None:
    _invalid(_integer(Tag.BatchCount, 1)[:size])


def test_truncated_value() -> None:
    data = _integer(Tag.BatchCount, 1)
    _invalid(data[:12])
    _invalid(data[:15])


def test_truncated_text_value() -> None:
    data = _header(Tag.NameValue, 0x07, 10) + b"abcdefghij" + bytes(6)
    assert binary.decode(data).value == "abcdefghij"
    _invalid(data[:-1])  # the padding is part of the item
    _invalid(data[:12])


def test_length_beyond_buffer() -> None:
    _invalid(_header(Tag.Data, 0x08, 64) + bytes(16))
    # A child claiming more than its parent structure holds, though the buffer would have the bytes.
    child = _header(Tag.Data, 0x08, 16) + bytes(16)
    parent = _header(Tag.Attributes, 0x01, 8) + child
    _invalid(parent)


@pytest.mark.parametrize("length", [0xFFFFFFF0, 0xFFFFFFFF, 0x7FFFFFFF])
def test_huge_length(length: int) -> None:
    _invalid(_header(Tag.Data, 0x08, length) + bytes(8))
    _invalid(_header(Tag.RequestMessage, 0x01, length) + _integer(Tag.BatchCount, 1))


@pytest.mark.parametrize(
    ("type_code", "length"),
    [(0x02, 8), (0x02, 0), (0x05, 8), (0x0A, 2), (0x03, 4), (0x06, 4), (0x09, 16), (0x0B, 4)],
)
def test_wrong_fixed_length(type_code: int, length: int) -> None:
    padded = length + (-length % 8)
    _invalid(_header(Tag.BatchCount, type_code, length) + bytes(padded))


@pytest.mark.parametrize("type_code", [0x00, 0x0C, 0x42, 0xFF])
def test_unknown_type_byte(type_code: int) -> None:
    _invalid(_header(Tag.BatchCount, type_code, 4) + bytes(8))


@pytest.mark.parametrize("raw", [2, -1, 0x100])
def test_boolean_must_be_0_or_1(raw: int) -> None:
    _invalid(_header(Tag.Sensitive, 0x06, 8) + struct.pack(">q", raw))


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"\xc3", b"a\x80b", b"\xed\xa0\x80"])
def test_invalid_utf8_text(raw: bytes) -> None:
    _invalid(_header(Tag.NameValue, 0x07, len(raw)) + raw + bytes(-len(raw) % 8))


def test_structure_nesting_deeper_than_32() -> None:
    message = _invalid(_nested(33))
    assert "32" in message
    _invalid(_nested(500))


def test_structure_length_not_a_multiple_of_8() -> None:
    _invalid(_header(Tag.Attributes, 0x01, 12) + _integer(Tag.BatchCount, 1)[:12] + bytes(4))


def test_big_integer_length_not_a_multiple_of_8() -> None:
    _invalid(_header(Tag.Modulus, 0x04, 4) + bytes(8))


@pytest.mark.parametrize("extra", [bytes(1), bytes(8), _integer(Tag.BatchCount, 1)])
def test_trailing_bytes(extra: bytes) -> None:
    _invalid(_integer(Tag.BatchCount, 1) + extra)


def test_encoder_refuses_pseudo_tags() -> None:
    """Cosmian JSON pseudo tags (bare payloads, "Object") have no binary form."""
    bare = json_codec.from_json({"tag": "Get", "value": []})
    with pytest.raises(KmipError) as info:
        binary.encode(bare)
    assert info.value.reason == ResultReason.InvalidMessage


def test_encoding_layout_and_padding() -> None:
    items = TTLV.struct(
        Tag.Attributes,
        [
            TTLV(Tag.CryptographicLength, ItemType.Integer, -1),
            TTLV(Tag.UsageLimitsCount, ItemType.LongInteger, 2**40),
            TTLV(Tag.Modulus, ItemType.BigInteger, -(2**70)),
            TTLV(Tag.ObjectType, ItemType.Enumeration, 2),
            TTLV(Tag.Sensitive, ItemType.Boolean, True),
            TTLV(Tag.NameValue, ItemType.TextString, "abc"),
            TTLV(Tag.Data, ItemType.ByteString, b"\x01" * 9),
            TTLV(Tag.ActivationDate, ItemType.DateTime, 1_700_000_000),
            TTLV(Tag.LeaseTime, ItemType.Interval, 2**32 - 1),
            TTLV(Tag.TimeStamp, ItemType.DateTimeExtended, 1_700_000_000_123_456),
        ],
    )
    data = binary.encode(items)
    assert len(data) % 8 == 0
    assert binary.decode(data) == items
    assert binary.encoded_length(items) == len(data)
    body = data[8:]
    assert body[:16] == bytes.fromhex("42002A02 00000004 FFFFFFFF 00000000".replace(" ", ""))
    assert body[16:32] == bytes.fromhex("42009603 00000008 0000010000000000".replace(" ", ""))
    # BigInteger -2^70: sign-extended to 16 bytes.
    assert body[32:56] == bytes.fromhex("42005204 00000010" + "FFFFFFFFFFFFFFC0" + "0000000000000000")
    text = bytes.fromhex("42005507 00000003") + b"abc" + bytes(5)
    assert text in data
    byte_string = bytes.fromhex("4200C208 00000009") + b"\x01" * 9 + bytes(7)
    assert byte_string in data


@pytest.mark.parametrize("seconds", [2**63 - 1, -(2**63), 253402300800, -62135596801])
def test_datetime_outside_the_calendar(seconds: int) -> None:
    """Years 1-9999 only: a DateTime that decodes must be emittable as an ISO date in JSON and XML."""
    _invalid(_header(Tag.ActivationDate, 0x09, 8) + struct.pack(">q", seconds))
