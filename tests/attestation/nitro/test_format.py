"""The Nitro document format: the real sample parses field by field, round-trips byte-exact, and every kind of
malformed input fails as FormatError naming the field (never IndexError, KeyError, cbor2 errors...)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization

from attestation.errors import FormatError
from attestation.formats import nitro
from attestation.formats.nitro import NitroDocument, NitroPayload
from attestation.roots import pinned
from tests.attestation.nitro.builder import NitroTestPki
from tests.attestation.nitro.conftest import SIM_TIME


def test_sample_fields(nitro_sample: bytes) -> None:
    doc = nitro.parse(nitro_sample)
    p = doc.payload
    assert nitro_sample[0] == 0x84 and not doc.tagged
    assert doc.protected == bytes.fromhex("a1013822") and dict(doc.unprotected) == {}
    assert len(doc.signature) == 96
    assert p.module_id == "i-0918f6c55e3b61d89-enc018aa8b8e2285d13"
    assert p.digest == "SHA384"
    assert p.timestamp == 1695049410860
    assert p.time == datetime(2023, 9, 18, 15, 3, 30, 860000, tzinfo=UTC)
    assert [i for i, _ in p.pcrs] == list(range(16)) and all(len(v) == 48 for _, v in p.pcrs)
    assert p.pcr(0) == p.pcr(1) == p.pcr(2) == p.pcr(8) == bytes(48)
    assert any(p.pcr(3)) and any(p.pcr(4))
    assert p.pcr(16) is None
    aws_root = pinned().nitro[0].public_bytes(serialization.Encoding.DER)
    assert len(p.cabundle) == 4 and p.cabundle[0] == aws_root  # root first
    assert len(p.certificate) == 640
    assert p.public_key is None and len(p.user_data or b"") == 91 and len(p.nonce or b"") == 256
    assert p.absent == frozenset() and p.key_order == nitro.AWS_KEY_ORDER and p.extra == ()


def test_sample_round_trips_byte_exact(nitro_sample: bytes) -> None:
    doc = nitro.parse(nitro_sample)
    assert doc.to_bytes() == nitro_sample
    assert doc.payload.to_bytes() == doc.payload_bytes
    assert NitroPayload.from_bytes(doc.payload_bytes) == doc.payload
    rebuilt = NitroDocument(doc.protected, {}, doc.payload.to_bytes(), doc.signature, doc.payload)
    assert rebuilt.to_bytes() == nitro_sample


def test_tagged_form_round_trips(nitro_sample: bytes) -> None:
    tagged = b"\xd2" + nitro_sample  # tag 18 head, then the same array
    doc = nitro.parse(tagged)
    assert doc.tagged and doc.to_bytes() == tagged
    assert doc.payload == nitro.parse(nitro_sample).payload


def test_base64_text_forms(att_vectors: Path, nitro_sample: bytes) -> None:
    text = (att_vectors / "nitro-evervault" / "valid-attestation-doc-base64").read_text()
    assert nitro.load(text).to_bytes() == nitro_sample
    assert nitro.load(text.encode()).to_bytes() == nitro_sample
    assert nitro.load(nitro_sample).to_bytes() == nitro_sample
    wrapped = "\n".join(text.strip()[i : i + 76] for i in range(0, len(text.strip()), 76))
    assert nitro.decode_text(wrapped) == nitro_sample
    urlsafe = base64.urlsafe_b64encode(nitro_sample).decode().rstrip("=")
    assert nitro.decode_text(urlsafe) == nitro_sample
    with pytest.raises(FormatError) as e:
        nitro.decode_text("not base64 at all!")
    assert e.value.field == "document"
    with pytest.raises(FormatError):
        nitro.decode_text(b"\xff\xfe")


def test_every_truncation_is_a_format_error(nitro_sample: bytes) -> None:
    for n in range(len(nitro_sample)):
        with pytest.raises(FormatError):
            nitro.parse(nitro_sample[:n])


def test_null_and_absent_optionals_round_trip() -> None:
    pki = NitroTestPki.create(SIM_TIME)
    base = pki.payload(SIM_TIME, user_data=b"", nonce=b"n" * 512)
    assert base.user_data == b""  # empty, not null
    for absent in (frozenset(), frozenset({"public_key"}), frozenset({"public_key", "user_data", "nonce"})):
        p = NitroPayload(**{**base.__dict__, "absent": absent})
        raw = p.to_bytes()
        back = NitroPayload.from_bytes(raw)
        assert back.absent == absent and back.to_bytes() == raw
        for name in absent:
            assert name.encode() not in raw
    assert b"public_key\xf6" in base.to_bytes()  # present with null


def _payload_map(nitro_sample: bytes) -> dict[str, object]:
    return dict(cbor2.loads(nitro.parse(nitro_sample).payload_bytes))


def _with_payload(nitro_sample: bytes, payload: bytes) -> bytes:
    outer = cbor2.loads(nitro_sample)
    outer[2] = payload
    return cbor2.dumps(outer)


PAYLOAD_CASES = [
    ("module_id", lambda m: m.pop("module_id")),
    ("module_id", lambda m: m.update(module_id="")),
    ("module_id", lambda m: m.update(module_id=b"bytes")),
    ("digest", lambda m: m.update(digest="SHA1")),
    ("timestamp", lambda m: m.update(timestamp=-5)),
    ("timestamp", lambda m: m.update(timestamp=True)),
    ("timestamp", lambda m: m.update(timestamp=1.5)),
    ("timestamp", lambda m: m.pop("timestamp")),
    ("pcrs", lambda m: m.update(pcrs={})),
    ("pcrs", lambda m: m.update(pcrs={i: bytes(48) for i in range(33)})),
    ("pcrs", lambda m: m.update(pcrs={32: bytes(48)})),
    ("pcrs", lambda m: m.update(pcrs={"0": bytes(48)})),
    ("pcrs", lambda m: m.update(pcrs=[bytes(48)])),
    ("pcrs[0]", lambda m: m.update(pcrs={0: bytes(47)})),
    ("pcrs[1]", lambda m: m.update(pcrs={0: bytes(48), 1: bytes(32)})),
    ("pcrs[0]", lambda m: m.update(digest="SHA256")),  # 48-byte PCRs with a SHA256 digest
    ("pcrs[0]", lambda m: m.update(pcrs={0: "text"})),
    ("certificate", lambda m: m.update(certificate=b"")),
    ("certificate", lambda m: m.update(certificate=bytes(1025))),
    ("certificate", lambda m: m.pop("certificate")),
    ("cabundle", lambda m: m.update(cabundle=[])),
    ("cabundle", lambda m: m.update(cabundle=b"x")),
    ("cabundle[1]", lambda m: m.update(cabundle=[b"x", b""])),
    ("cabundle[0]", lambda m: m.update(cabundle=[bytes(1025)])),
    ("public_key", lambda m: m.update(public_key=b"")),
    ("public_key", lambda m: m.update(public_key=bytes(1025))),
    ("user_data", lambda m: m.update(user_data=bytes(1025))),
    ("user_data", lambda m: m.update(user_data="text")),
    ("nonce", lambda m: m.update(nonce=bytes(1025))),
    ("nonce", lambda m: m.update(nonce=7)),
    ("payload", lambda m: m.update({1: "integer key"})),
]


@pytest.mark.parametrize(("field", "mutate"), PAYLOAD_CASES)
def test_bad_payload_fields_are_named(nitro_sample: bytes, field: str, mutate: object) -> None:
    m = _payload_map(nitro_sample)
    mutate(m)  # type: ignore[operator]
    with pytest.raises(FormatError) as e:
        nitro.parse(_with_payload(nitro_sample, cbor2.dumps(m)))
    assert e.value.field == field, e.value


def test_payload_not_a_map(nitro_sample: bytes) -> None:
    for payload in (cbor2.dumps([1, 2]), b"", b"\xa1", cbor2.dumps({"a": 1}) + b"\x00"):
        with pytest.raises(FormatError) as e:
            nitro.parse(_with_payload(nitro_sample, payload))
        assert e.value.field == "payload"


def test_non_preferred_cbor_is_refused(nitro_sample: bytes) -> None:
    """Byte-exactness needs preferred serialisation: a long timestamp head, a duplicated key or an
    indefinite-length map all decode to the same values but would not re-encode to the signed bytes."""
    payload = nitro.parse(nitro_sample).payload_bytes
    long_head = payload.replace(b"\x69module_id", b"\x78\x09module_id", 1)
    duplicated = b"\xaa" + payload[1:] + cbor2.dumps("digest") + cbor2.dumps("SHA384")
    indefinite = b"\xbf" + payload[1:] + b"\xff"
    for bad in (long_head, duplicated, indefinite):
        assert cbor2.loads(bad)["digest"] == "SHA384"
        with pytest.raises(FormatError) as e:
            nitro.parse(_with_payload(nitro_sample, bad))
        assert e.value.field == "payload"
    # the same for the outer array: a 2-byte head for the 4-byte protected header
    outer_long = nitro_sample.replace(b"\x44\xa1\x01\x38\x22", b"\x58\x04\xa1\x01\x38\x22", 1)
    with pytest.raises(FormatError) as e:
        nitro.parse(outer_long)
    assert e.value.field == "document"


def test_unknown_payload_keys_are_kept(nitro_sample: bytes) -> None:
    m = _payload_map(nitro_sample)
    m["future_field"] = [1, b"x"]
    raw = cbor2.dumps(m)
    p = NitroPayload.from_bytes(raw)
    assert p.extra == (("future_field", [1, b"x"]),) and p.to_bytes() == raw


OUTER_CASES = [
    ("document", lambda o: cbor2.dumps(o[:3])),
    ("document", lambda o: cbor2.dumps({"a": 1})),
    ("document", lambda o: cbor2.dumps(cbor2.CBORTag(17, o))),
    ("document", lambda o: cbor2.dumps(o) + b"\x00"),
    ("protected", lambda o: cbor2.dumps([{1: -35}, *o[1:]])),
    ("protected", lambda o: cbor2.dumps([cbor2.dumps({1: -7}), *o[1:]])),
    ("protected", lambda o: cbor2.dumps([cbor2.dumps({1: -35, 4: b"kid"}), *o[1:]])),
    ("protected", lambda o: cbor2.dumps([b"", *o[1:]])),
    ("protected", lambda o: cbor2.dumps([b"\xa1\x01", *o[1:]])),
    ("unprotected", lambda o: cbor2.dumps([o[0], [], *o[2:]])),
    ("payload", lambda o: cbor2.dumps([o[0], o[1], "text", o[3]])),
    ("signature", lambda o: cbor2.dumps([*o[:3], o[3][:95]])),
    ("signature", lambda o: cbor2.dumps([*o[:3], o[3] + b"\x00"])),
    ("signature", lambda o: cbor2.dumps([*o[:3], None])),
]


@pytest.mark.parametrize(("field", "build"), OUTER_CASES)
def test_bad_cose_structure_is_named(nitro_sample: bytes, field: str, build: object) -> None:
    with pytest.raises(FormatError) as e:
        nitro.parse(build(cbor2.loads(nitro_sample)))  # type: ignore[operator]
    assert e.value.field == field, e.value


def test_not_bytes_and_too_big() -> None:
    with pytest.raises(FormatError):
        NitroDocument.from_bytes("text")  # type: ignore[arg-type]
    with pytest.raises(FormatError) as e:
        nitro.parse(b"\x84" + bytes(nitro.MAX_DOCUMENT_SIZE))
    assert "more than" in e.value.message


def test_hostile_cbor_never_escapes_as_another_exception() -> None:
    hostile = [
        b"\x84\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # 2^64-byte bstr
        b"\x84" + b"\x81" * 5000,  # deep nesting
        b"\xd2\xd8\x1c\x81\xd8\x1d\x00",  # shared-reference tags
        b"\x84\xc1\x1a\x00\x00\x00\x00\xa0\x40\x40",  # epoch datetime tag where a bstr belongs
        b"\x84\x44\xa1\x01\x38\x22\xa0\x41\xff\x40",  # payload is a lone "break"
    ]
    for data in hostile:
        with pytest.raises(FormatError):
            nitro.parse(data)
