"""The real PyKMIP client (`kmip.pie.client.ProxyKmipClient`, PyKMIP 0.11.0) against the socket listener, unchanged.

It speaks KMIP 1.2 (its default), 1.4 and 2.0 in binary TTLV over TLS 1.2+ with john_doe's client certificate,
exactly as an application using PyKMIP would.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.socket.conftest import SocketKms

try:
    from kmip.core import enums
    from kmip.pie import exceptions
    from kmip.pie.client import ProxyKmipClient
except ImportError:  # pragma: no cover - PyKMIP is in the [test] extra
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("PyKMIP is not installed (pip install -e '.[test]')", allow_module_level=True)

VERSIONS = {"1.2": enums.KMIPVersion.KMIP_1_2, "1.4": enums.KMIPVersion.KMIP_1_4, "2.0": enums.KMIPVersion.KMIP_2_0}
CBC_PKCS5 = {
    "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
    "block_cipher_mode": enums.BlockCipherMode.CBC,
    "padding_method": enums.PaddingMethod.PKCS5,
    "random_iv": True,
}
USAGE = [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]
PLAINTEXT = b"PyKMIP over the KMIP socket, 42 bytes long"


@pytest.fixture(params=list(VERSIONS), ids=lambda v: f"kmip{v}")
def client(request: pytest.FixtureRequest, socket_kms: SocketKms, tmp_path: Path) -> Iterator[Any]:
    empty = tmp_path / "pykmip.conf"
    empty.write_text("")  # no ~/.pykmip or /etc/pykmip configuration may leak in
    pki = socket_kms.pki
    kmip = ProxyKmipClient(
        hostname="127.0.0.1",
        port=socket_kms.port,
        cert=str(pki.client_cert),
        key=str(pki.client_key),
        ca=str(pki.ca),
        config_file=str(empty),
        kmip_version=VERSIONS[request.param],
    )
    with kmip:
        yield kmip


def test_aes_key_lifecycle(client: Any) -> None:
    name = f"pykmip-{uuid.uuid4().hex[:12]}"
    uid = client.create(enums.CryptographicAlgorithm.AES, 256, name=name, cryptographic_usage_mask=USAGE)
    assert isinstance(uid, str) and uid
    client.activate(uid)

    key = client.get(uid)
    assert key.cryptographic_algorithm == enums.CryptographicAlgorithm.AES
    assert key.cryptographic_length == 256 and len(key.value) == 32

    ciphertext, iv = client.encrypt(PLAINTEXT, uid=uid, cryptographic_parameters=CBC_PKCS5)
    assert len(iv) == 16 and len(ciphertext) == 48
    decryptor = Cipher(algorithms.AES(key.value), modes.CBC(iv)).decryptor()  # the server used the key Get returned
    unpadder = padding.PKCS7(128).unpadder()
    assert unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize() == PLAINTEXT
    assert client.decrypt(ciphertext, uid=uid, cryptographic_parameters=CBC_PKCS5, iv_counter_nonce=iv) == PLAINTEXT
    again, other_iv = client.encrypt(PLAINTEXT, uid=uid, cryptographic_parameters=CBC_PKCS5)
    assert other_iv != iv and again != ciphertext  # a random IV each time

    by_name = client.attribute_factory.create_attribute(enums.AttributeType.NAME, name)
    assert client.locate(attributes=[by_name]) == [uid]

    got_uid, attributes = client.get_attributes(
        uid, ["Cryptographic Algorithm", "Cryptographic Length", "Cryptographic Usage Mask", "Name", "State"]
    )
    values = {a.attribute_name.value: a.attribute_value for a in attributes}
    assert got_uid == uid
    assert values["Cryptographic Algorithm"].value == enums.CryptographicAlgorithm.AES
    assert values["Cryptographic Length"].value == 256
    assert values["Cryptographic Usage Mask"].value == 12  # Encrypt | Decrypt
    assert values["Name"].name_value.value == name
    assert values["State"].value == enums.State.ACTIVE
    names = client.get_attribute_list(uid)
    assert {"Cryptographic Algorithm", "Cryptographic Length", "Name", "State", "Unique Identifier"} <= set(names)

    client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
    _, attributes = client.get_attributes(uid, ["State"])
    assert attributes[0].attribute_value.value == enums.State.DEACTIVATED
    with pytest.raises(exceptions.KmipOperationFailure):
        client.encrypt(PLAINTEXT, uid=uid, cryptographic_parameters=CBC_PKCS5)  # revoked: no longer for protection
    client.destroy(uid)
    with pytest.raises(exceptions.KmipOperationFailure):
        client.get(uid)
    assert client.locate(attributes=[by_name]) == []


def test_unknown_id_raises_the_kmip_error(client: Any) -> None:
    with pytest.raises(exceptions.KmipOperationFailure) as failure:
        client.get("99999999")
    assert failure.value.status == enums.ResultStatus.OPERATION_FAILED
    # KMIP 1.x calls it Item Not Found; 2.0 has Object Not Found.
    wanted = (
        enums.ResultReason.OBJECT_NOT_FOUND
        if client.kmip_version == enums.KMIPVersion.KMIP_2_0
        else (enums.ResultReason.ITEM_NOT_FOUND)
    )
    assert failure.value.reason == wanted
    assert "99999999" in failure.value.message


def test_register_and_mac(client: Any) -> None:
    """Two more operations PyKMIP applications use: Register of their own key, MAC with an HMAC key."""
    from kmip.pie import objects

    material = bytes(range(16))
    uid = client.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, material, USAGE))
    assert client.get(uid).value == material
    mac_key = client.create(
        enums.CryptographicAlgorithm.HMAC_SHA256,
        256,
        cryptographic_usage_mask=[enums.CryptographicUsageMask.MAC_GENERATE],
    )
    client.activate(mac_key)
    got_uid, mac = client.mac(b"message", uid=mac_key, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
    assert got_uid == mac_key and len(mac) == 32


def test_get_every_attribute(client: Any) -> None:
    """At 1.x the server sends only attributes the version defines (and PyKMIP can parse); at 2.0 it sends all
    2.0 attributes, several of which (Extractable, Original Creation Date, ...) PyKMIP 0.11 cannot parse."""
    uid = client.create(enums.CryptographicAlgorithm.AES, 256, cryptographic_usage_mask=USAGE)
    if client.kmip_version == enums.KMIPVersion.KMIP_2_0:
        pytest.skip("PyKMIP 0.11 cannot parse every KMIP 2.0 attribute (client limitation); named attributes work")
    got_uid, attributes = client.get_attributes(uid)
    assert got_uid == uid
    names = {a.attribute_name.value for a in attributes}
    assert {"Cryptographic Algorithm", "Cryptographic Length", "State", "Unique Identifier"} <= names
    assert not names & {"Key Format Type", "Short Unique Identifier", "Protection Storage Mask"}


def test_concurrent_clients(socket_kms: SocketKms, tmp_path: Path) -> None:
    """Several PyKMIP clients at once, one connection each, served by their own threads, none mixed up."""
    from concurrent.futures import ThreadPoolExecutor

    empty = tmp_path / "pykmip.conf"
    empty.write_text("")
    pki = socket_kms.pki

    def session(n: int) -> list[bytes]:
        kmip = ProxyKmipClient(
            hostname="127.0.0.1",
            port=socket_kms.port,
            cert=str(pki.client_cert),
            key=str(pki.client_key),
            ca=str(pki.ca),
            config_file=str(empty),
            kmip_version=enums.KMIPVersion.KMIP_1_4,
        )
        out = []
        with kmip:
            for i in range(5):
                uid = kmip.create(enums.CryptographicAlgorithm.AES, 256, cryptographic_usage_mask=USAGE)
                kmip.activate(uid)
                data = f"client {n} message {i}".encode()
                ciphertext, iv = kmip.encrypt(data, uid=uid, cryptographic_parameters=CBC_PKCS5)
                out.append(kmip.decrypt(ciphertext, uid=uid, cryptographic_parameters=CBC_PKCS5, iv_counter_nonce=iv))
        return out

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(session, range(6)))
    assert results == [[f"client {n} message {i}".encode() for i in range(5)] for n in range(6)]
