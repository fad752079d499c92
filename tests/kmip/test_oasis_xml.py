"""Every OASIS KMIP 2.1 XML test case parses and round-trips XML -> TTLV -> binary -> TTLV and -> JSON -> TTLV.

PKCS11-M-1 is the exception: its PKCS_11Function enumeration values are names this server has no table for
(it needs an HSM anyway), and it must be refused cleanly.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kms.kmip import binary, json_codec, schema, xml_codec
from kms.kmip.enums import ResultReason
from kms.kmip.errors import KmipError
from kms.kmip.json_codec import Dialect
from kms.kmip.messages import RequestMessage, ResponseMessage
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType

_NOW = re.compile(r"^\$NOW([+-]\d+)?$")
NOW = 1_700_000_000
EXCLUDED = "PKCS11-M-1-21"


def _files(vectors: Path) -> list[Path]:
    base = vectors / "kmip" / "oasis-2.1"
    files = sorted((base / "mandatory").glob("*.xml")) + sorted((base / "optional").glob("*.xml"))
    assert len(files) == 93
    return files


def _substitute(root: ET.Element) -> None:
    """Fill the runner placeholders: times for $NOW[+-n], a fixed ByteString for $DATA & co. ($UNIQUE_IDENTIFIER_n
    are TextStrings and stay as they are)."""
    for el in root.iter():
        v = el.get("value")
        if v is None or not v.startswith("$"):
            continue
        m = _NOW.match(v)
        if el.get("type") == "DateTime":
            assert m, v
            el.set("value", f"0x{NOW + int(m.group(1) or 0):016X}")
        elif el.get("type") == "ByteString":
            el.set("value", "00112233")


def _messages(path: Path) -> list[ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "KMIP"
    _substitute(root)
    messages = list(root)
    assert messages and all(m.tag in ("RequestMessage", "ResponseMessage") for m in messages)
    return messages


def _case_names() -> list[str]:
    from tests.conftest import VECTORS

    base = VECTORS / "kmip" / "oasis-2.1"
    if not base.is_dir():
        return ["(vectors missing)"]
    return [p.stem for p in sorted(base.glob("*/*.xml"))]


@pytest.mark.parametrize("case", _case_names())
def test_oasis_case_round_trips(vectors: Path, case: str) -> None:
    (path,) = [p for p in _files(vectors) if p.stem == case]
    messages = _messages(path)
    if case == EXCLUDED:
        with pytest.raises(KmipError) as info:
            xml_codec.from_element(messages[0])
        assert info.value.reason == ResultReason.InvalidMessage
        assert "PKCS_11Function" in info.value.message
        return
    for i, el in enumerate(messages):
        where = f"{case} message {i}"
        item = xml_codec.from_element(el)
        assert item.tag == (Tag.RequestMessage if el.tag == "RequestMessage" else Tag.ResponseMessage), where

        data = binary.encode(item)
        assert binary.decode(data) == item, where
        assert binary.encoded_length(item) == len(data), where

        for dialect in (Dialect.OASIS, Dialect.COSMIAN):
            again = json_codec.restore_object_tags(json_codec.loads(json_codec.dumps(item, dialect)))
            assert again == item, (where, dialect)

        assert xml_codec.loads(xml_codec.dumps(item)) == item, where

        # The message envelope decodes to the typed structures the server uses.
        if item.tag == Tag.RequestMessage:
            typed = schema.decode(RequestMessage, item)
            assert typed.request_header.batch_count == len(typed.batch_item), where
        else:
            response = schema.decode(ResponseMessage, item)
            assert response.response_header.batch_count == len(response.batch_item), where


def test_xml_values_mean_what_they_say(vectors: Path) -> None:
    """SKLC-M-1 step 0: Create AES-256 with usage mask 'Encrypt Decrypt' and a Name; spot-check the decoding."""
    (path,) = [p for p in _files(vectors) if p.stem == "SKLC-M-1-21"]
    request = xml_codec.from_element(_messages(path)[0])
    walk = {i.tag: i for i in request.walk()}
    assert walk[Tag.CryptographicAlgorithm] == TTLV(Tag.CryptographicAlgorithm, ItemType.Enumeration, 3)
    assert walk[Tag.CryptographicLength].value == 256
    assert walk[Tag.CryptographicUsageMask] == TTLV(Tag.CryptographicUsageMask, ItemType.Integer, 12)
    assert walk[Tag.ProtocolVersionMajor].value == 2 and walk[Tag.ProtocolVersionMinor].value == 1
    emitted = json.loads(json_codec.dumps(request, Dialect.OASIS))
    assert emitted["tag"] == "RequestMessage"


def test_json_from_oasis_matches_the_xml(vectors: Path) -> None:
    """vectors/kmip/json-from-oasis is the same test cases in JSON: both parse to the same TTLV."""
    compared = 0
    for path in _files(vectors):
        if path.stem == EXCLUDED:
            continue
        converted = json.loads((vectors / "kmip" / "json-from-oasis" / f"{path.stem}.json").read_text())
        xml_messages = _messages(path)
        assert len(converted["messages"]) == len(xml_messages), path.stem
        for el, entry in zip(xml_messages, converted["messages"], strict=True):
            assert entry["kind"] == el.tag
            from_xml = xml_codec.from_element(el)
            text = json.dumps(entry["ttlv"])
            text = re.sub(r'"\$NOW([+-]\d+)?"', lambda m: f'"0x{NOW + int(m.group(1) or 0):016X}"', text)
            text = re.sub(
                r'"type": "ByteString", "value": "\$[A-Z_]+(_\d+)?"', '"type": "ByteString", "value": "00112233"', text
            )
            assert json_codec.loads(text) == from_xml, path.stem
            compared += 1
    assert compared > 1000


def test_xml_masks_are_space_separated() -> None:
    el = ET.fromstring('<CryptographicUsageMask type="Integer" value="Encrypt Decrypt"/>')
    assert xml_codec.from_element(el).value == 12
    out = xml_codec.dumps(TTLV(Tag.CryptographicUsageMask, ItemType.Integer, 12))
    assert 'value="Encrypt Decrypt"' in out


@pytest.mark.parametrize(
    "xml",
    [
        "<RequestMessage><NoSuchTag type='Integer' value='1'/></RequestMessage>",
        "<ObjectType type='Enumeration' value='NoSuchType'/>",
        "<CryptographicLength type='Integer' value='abc'/>",
        "<CryptographicLength type='Weird' value='1'/>",
        "<CryptographicLength type='Integer'/>",
        "<Data type='ByteString' value='zz'/>",
        "<Sensitive type='Boolean' value='maybe'/>",
        "<RequestMessage>",
        "<!DOCTYPE x [<!ENTITY a 'b'>]><RequestMessage/>",
    ],
)
def test_xml_refusals(xml: str) -> None:
    with pytest.raises(KmipError) as info:
        xml_codec.loads(xml)
    assert info.value.reason == ResultReason.InvalidMessage


@pytest.mark.parametrize("value", ["-5", "0x-5"])
def test_xml_signed_big_integer_is_invalid_message(value: str) -> None:
    with pytest.raises(KmipError) as info:
        xml_codec.loads(f"<Modulus type='BigInteger' value='{value}'/>")
    assert info.value.reason == ResultReason.InvalidMessage
