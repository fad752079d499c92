"""PyKMIP's captured binary sessions (KMIP 1.2, 1.4, 2.0) replayed over the TLS socket, one connection each.

Every request is sent as captured, except that the object id PyKMIP's own server had assigned is replaced by the
one ours returned. Each response must have the structure PyKMIP's server gave (same tags, same result status, the
same reason for the failure), with values that mean the same thing; the Encrypt result must decrypt, with the key
the Get returned, to the data sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kms.kmip import binary
from kms.kmip.enums import ResultReason, ResultStatus
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType
from tests.socket.conftest import SocketKms, exchange


def _shape(item: TTLV) -> object:
    if item.type is ItemType.Structure:
        return (item.tag, [_shape(c) for c in item.value])
    return (item.tag, item.type)


@pytest.mark.parametrize("version", ["1.2", "1.4", "2.0"])
def test_pykmip_session_over_one_connection(vectors: Path, socket_kms: SocketKms, version: str) -> None:
    session = json.loads((vectors / "kmip" / "pykmip-binary" / f"pykmip_{version}_session.json").read_text())
    uid = theirs = key = None
    with socket_kms.connect() as conn:
        for pair in session["pairs"]:
            step = pair["step"]
            request = binary.decode(bytes.fromhex(pair["request_hex"]))
            expected = binary.decode(bytes.fromhex(pair["response_hex"]))
            for item in request.walk():
                if item.tag == Tag.UniqueIdentifier and uid and item.value == theirs:
                    item.value = uid
            got = exchange(conn, request)
            major, minor = (int(p) for p in version.split("."))
            protocol = got.find(Tag.ResponseHeader).find(Tag.ProtocolVersion)
            assert (protocol.find(Tag.ProtocolVersionMajor).value, protocol.find(Tag.ProtocolVersionMinor).value) == (
                major,
                minor,
            ), step
            ebi, gbi = expected.find(Tag.BatchItem), got.find(Tag.BatchItem)
            assert gbi.find(Tag.Operation).value == ebi.find(Tag.Operation).value, step
            assert gbi.find(Tag.ResultStatus).value == ebi.find(Tag.ResultStatus).value, step
            if ebi.find(Tag.ResultStatus).value == ResultStatus.OperationFailed:
                # PyKMIP's server says Item Not Found at every version; KMIP 2.0 has Object Not Found for it.
                wanted = ResultReason.ObjectNotFound if version == "2.0" else ResultReason.ItemNotFound
                assert gbi.find(Tag.ResultReason).value == wanted, step
                continue
            assert _shape(gbi) == _shape(ebi), step
            payload = gbi.find(Tag.ResponsePayload)
            if uid is None:
                uid = payload.find(Tag.UniqueIdentifier).value
                theirs = ebi.find(Tag.ResponsePayload).find(Tag.UniqueIdentifier).value
            assert payload.find(Tag.UniqueIdentifier).value == uid, step
            if step.startswith("Get"):
                key = next(i.value for i in payload.walk() if i.tag == Tag.KeyMaterial)
                assert len(key) == 32
            if step.startswith("Encrypt"):
                assert key is not None
                data = next(i.value for i in request.walk() if i.tag == Tag.Data)
                iv = payload.find(Tag.IVCounterNonce).value
                decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
                unpadder = padding.PKCS7(128).unpadder()
                clear = decryptor.update(payload.find(Tag.Data).value) + decryptor.finalize()
                assert unpadder.update(clear) + unpadder.finalize() == data
    assert uid is not None and key is not None  # the session did create, get and use a key
