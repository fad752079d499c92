"""PyKMIP's binary TTLV sessions (KMIP 1.2, 1.4, 2.0, captured from the real client) replayed on POST /kmip.

Every request is sent as captured, except that the object id PyKMIP's server had assigned is replaced by the one
ours returned. Each response must have the same structure as the captured one (same tags, same result
status, same reason for the failure), with values that carry the same meaning.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kms.kmip import binary
from kms.kmip.enums import ResultReason, ResultStatus
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType
from tests.support.server import ServerProcess

OCTET = {"Content-Type": "application/octet-stream"}


def _shape(item: TTLV) -> object:
    if item.type is ItemType.Structure:
        return (item.tag, [_shape(c) for c in item.value])
    return (item.tag, item.type)


@pytest.mark.parametrize("version", ["1.2", "1.4", "2.0"])
def test_pykmip_session_replays(vectors: Path, kms_server: ServerProcess, version: str) -> None:
    session = json.loads((vectors / "kmip" / "pykmip-binary" / f"pykmip_{version}_session.json").read_text())
    http = requests.Session()
    uid = None
    theirs = None
    key = None
    for pair in session["pairs"]:
        request = binary.decode(bytes.fromhex(pair["request_hex"]))
        expected = binary.decode(bytes.fromhex(pair["response_hex"]))
        for item in request.walk():
            if item.tag == Tag.UniqueIdentifier and uid and item.value == theirs:
                item.value = uid
        got = binary.decode(http.post(kms_server.url + "/kmip", data=binary.encode(request), headers=OCTET).content)
        ebi, gbi = expected.find(Tag.BatchItem), got.find(Tag.BatchItem)
        assert gbi.find(Tag.ResultStatus).value == ebi.find(Tag.ResultStatus).value, pair["step"]
        if ebi.find(Tag.ResultStatus).value == ResultStatus.OperationFailed:
            wanted = ResultReason.ObjectNotFound if version == "2.0" else ResultReason.ItemNotFound
            assert gbi.find(Tag.ResultReason).value == wanted
            continue
        # Same structure as PyKMIP's own server answered (the header time stamp aside).
        assert _shape(gbi) == _shape(ebi), pair["step"]
        payload = gbi.find(Tag.ResponsePayload)
        if uid is None:
            uid = payload.find(Tag.UniqueIdentifier).value
            theirs = ebi.find(Tag.ResponsePayload).find(Tag.UniqueIdentifier).value
        assert payload.find(Tag.UniqueIdentifier).value == uid
        if pair["step"].startswith("Get"):
            key = next(i.value for i in payload.walk() if i.tag == Tag.KeyMaterial)
            assert len(key) == 32
        if pair["step"].startswith("Encrypt"):
            data = next(i.value for i in request.walk() if i.tag == Tag.Data)
            ct = payload.find(Tag.Data).value
            iv = payload.find(Tag.IVCounterNonce).value
            dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
            unpad = padding.PKCS7(128).unpadder()
            assert unpad.update(dec.update(ct) + dec.finalize()) + unpad.finalize() == data
