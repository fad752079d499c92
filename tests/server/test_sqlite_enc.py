"""sqlite-enc on a real server: POST /new_database, the KmsDatabaseSecret header, groups isolated, files encrypted.

One kms-server process with `--database-type sqlite-enc` serves the module; each test makes its own groups.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kms.config import ConfigError, load
from kms.core.kms import Kms
from kms.store.base import Query, StoreError
from kms.store.sqlite_enc import DatabaseSecretError, GroupSecret, SqliteEncStore, decode_secret
from tests.server.kmip_http import (
    TIMEOUT,
    Kmip,
    batch_item,
    byte_string,
    child,
    children,
    create_aes,
    enum,
    from_binary,
    integer,
    payload,
    raw_key_block,
    request_message,
    struct,
    tag_attribute,
    text,
    to_binary,
    uid,
    value,
)
from tests.support.server import ServerProcess, kms_server_command

HEADER = "KmsDatabaseSecret"


@pytest.fixture(scope="module")
def enc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("sqlite-enc"), "--database-type", "sqlite-enc", workers=2)
    server.start()
    yield server
    server.stop()


def new_database(server: ServerProcess) -> str:
    r = requests.post(f"{server.url}/new_database", timeout=TIMEOUT)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    secret = r.json()
    assert isinstance(secret, str)
    return secret


def group_client(server: ServerProcess, secret: str) -> Kmip:
    kmip = Kmip(server.url)
    kmip.http.headers[HEADER] = secret
    return kmip


def group_files(server: ServerProcess, secret: str) -> list[Path]:
    group_id = decode_secret(secret).group_id
    return sorted(p for p in server.data_dir.iterdir() if p.name.startswith(f"{group_id}.sqlite"))


def file_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        if not p.name.endswith((".writelock", "-shm")):  # lock file; -shm is SQLite's shared-memory index
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def name_attr(name: str) -> dict:
    return struct("Name", text("NameValue", name), enum("NameType", "UninterpretedTextString"))


def register(kmip: Kmip, material: bytes, *attributes: dict, uid_: str | None = None) -> str:
    if uid_ is not None:  # Import under a chosen id
        body = struct(
            "Import",
            uid(uid_),
            enum("ObjectType", "SymmetricKey"),
            struct("Attributes", integer("CryptographicUsageMask", 2108), *attributes),
            struct("Object", raw_key_block(material)),
        )
    else:
        body = struct(
            "Register",
            enum("ObjectType", "SymmetricKey"),
            struct("Attributes", integer("CryptographicUsageMask", 2108), *attributes),
            struct("SymmetricKey", raw_key_block(material)),
        )
    return value(kmip.call(body), "UniqueIdentifier")


def material_of(kmip: Kmip, key: str) -> bytes:
    got = kmip.call(struct("Get", uid(key)))
    return bytes.fromhex(value(child(child(child(got, "Object"), "KeyBlock"), "KeyValue"), "KeyMaterial"))


# ------------------------------------------------------------------------------------------------ the secret


def test_new_database_returns_a_cosmian_secret_and_creates_a_file(enc_server: ServerProcess) -> None:
    secrets_ = {new_database(enc_server) for _ in range(3)}
    assert len(secrets_) == 3
    for secret in secrets_:
        data = json.loads(base64.b64decode(secret))
        assert set(data) == {"group_id", "key"}
        assert isinstance(data["group_id"], int) and 0 <= data["group_id"] < 1 << 128
        assert len(data["key"]) == 64 and bytes.fromhex(data["key"])
        assert (enc_server.data_dir / f"{data['group_id']}.sqlite").is_file()
        assert data["key"] not in "".join(enc_server.log)  # the secret is not logged


def test_secret_forms_the_server_reads() -> None:
    group_id, key = 2**127 + 12345, os.urandom(32)
    canonical = GroupSecret(group_id, key).encode()
    assert decode_secret(canonical) == GroupSecret(group_id, key)
    assert decode_secret(canonical.rstrip("=")) == GroupSecret(group_id, key)  # padding optional
    # The later Cosmian 4.x serialisation: a JSON array of the 48 bytes group id (big endian) || key.
    array = json.dumps(list(group_id.to_bytes(16, "big") + key)).encode()
    assert decode_secret(base64.b64encode(array).decode()) == GroupSecret(group_id, key)
    assert "key=" not in repr(GroupSecret(group_id, key)) and key.hex() not in repr(GroupSecret(group_id, key))
    bad = {
        None: "Missing KmsDatabaseSecret header in the query",
        "": "Missing KmsDatabaseSecret header in the query",
        "%%%": "KmsDatabaseSecret header cannot be decoded",
        base64.b64encode(b"not json").decode(): "KmsDatabaseSecret header cannot be read",
        base64.b64encode(b'{"group_id": 1}').decode(): "KmsDatabaseSecret header cannot be read",
        base64.b64encode(b'{"group_id": -1, "key": "' + b"00" * 32 + b'"}').decode(): "128-bit",
        base64.b64encode(b'{"group_id": true, "key": "' + b"00" * 32 + b'"}').decode(): "128-bit",
        base64.b64encode(b'{"group_id": 1, "key": "abcd"}').decode(): "32 bytes",
    }
    for header, message in bad.items():
        with pytest.raises(DatabaseSecretError) as info:
            decode_secret(header)
        assert info.value.status == 401 and message in info.value.message, (header, info.value.message)


# ------------------------------------------------------------------------------------------------ refusals


def test_requests_without_a_usable_secret_are_refused_and_change_nothing(enc_server: ServerProcess) -> None:
    secret = new_database(enc_server)
    owner = group_client(enc_server, secret)
    kept = owner.create_bare("kept")
    before = file_digest(group_files(enc_server, secret))
    data = json.loads(base64.b64decode(secret))
    wrong_key = base64.b64encode(json.dumps({"group_id": data["group_id"], "key": "00" * 32}).encode()).decode()
    unknown = GroupSecret(int.from_bytes(os.urandom(16), "big"), os.urandom(32)).encode()
    cases = [
        ({}, 401, "Missing KmsDatabaseSecret header in the query"),
        ({HEADER: "***"}, 401, "KmsDatabaseSecret header cannot be decoded"),
        ({HEADER: base64.b64encode(b"[1,2]").decode()}, 401, "KmsDatabaseSecret header cannot be read"),
        ({HEADER: unknown}, 401, "does not exist"),
        ({HEADER: wrong_key}, 403, f"wrong key for database group {data['group_id']}"),
    ]
    create = json.dumps(create_aes(tag_attribute("refused"), mask=2108))
    message = to_binary(request_message(batch_item("Create", *create_aes(mask=12)["value"])))
    for headers, status, text_ in cases:
        for path, body, kind in (
            ("/kmip/2_1", create, "application/json"),
            ("/kmip", message, "application/octet-stream"),
            ("/kmip", b"<RequestMessage/>", "application/xml"),
        ):
            r = requests.post(
                enc_server.url + path, data=body, headers={**headers, "Content-Type": kind}, timeout=TIMEOUT
            )
            assert r.status_code == status, (path, headers, r.status_code, r.text)
            assert text_ in r.text and "Traceback" not in r.text, r.text
    assert file_digest(group_files(enc_server, secret)) == before
    assert owner.locate_tag("refused") == [] and owner.locate_tag("kept") == [kept]


def test_info_routes_need_no_secret(enc_server: ServerProcess) -> None:
    health = requests.get(f"{enc_server.url}/health", timeout=TIMEOUT)
    assert health.status_code == 200 and health.json()["status"] == "UP", health.text
    assert requests.get(f"{enc_server.url}/version", timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{enc_server.url}/no-such-route", timeout=TIMEOUT).status_code == 404


def test_new_database_only_on_sqlite_enc(kms_server: ServerProcess) -> None:
    r = requests.post(f"{kms_server.url}/new_database", timeout=TIMEOUT)
    assert r.status_code == 404, r.text


# ------------------------------------------------------------------------------------------------ groups


def test_groups_are_isolated(enc_server: ServerProcess) -> None:
    a = group_client(enc_server, new_database(enc_server))
    b = group_client(enc_server, new_database(enc_server))
    tag = f"shared-{uuid.uuid4().hex[:8]}"
    key_a = a.create_bare(tag)
    key_b = b.create_bare(tag)
    assert a.locate_tag(tag) == [key_a] and b.locate_tag(tag) == [key_b]
    assert "not found" in b.fail(struct("Get", uid(key_a))).lower()
    assert "not found" in a.fail(struct("Get", uid(key_b))).lower()
    assert a.count_all() == 1 and b.count_all() == 1
    # The same id chosen in both groups: two objects, each group sees its own.
    ma, mb = os.urandom(32), os.urandom(32)
    register(a, ma, uid_="same-id")
    register(b, mb, uid_="same-id")
    assert material_of(a, "same-id") == ma and material_of(b, "same-id") == mb


def test_every_kmip_encoding_carries_the_secret(enc_server: ServerProcess) -> None:
    secret = new_database(enc_server)
    kmip = group_client(enc_server, secret)
    created_binary = kmip.op("Create", *create_aes(mask=12)["value"])  # binary TTLV on /kmip
    created_json = kmip.op("Create", *create_aes(mask=12)["value"], json=True)  # JSON RequestMessage on /kmip/2_1
    created_bare = kmip.create_bare()  # bare operation on /kmip/2_1
    oasis = requests.post(
        f"{enc_server.url}/kmip",
        data=json.dumps(request_message(batch_item("Locate", struct("Attributes")))),
        headers={HEADER: secret, "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert oasis.status_code == 200, oasis.text
    located = [c["value"] for c in children(payload(child(oasis.json(), "BatchItem")), "UniqueIdentifier")]
    assert set(located) == {
        value(created_binary, "UniqueIdentifier"),
        value(created_json, "UniqueIdentifier"),
        created_bare,
    }
    from kms.kmip import json_codec, xml_codec

    xml_body = xml_codec.dumps(json_codec.from_json(request_message(batch_item("Locate", struct("Attributes")))))
    xml = requests.post(
        f"{enc_server.url}/kmip",
        data=xml_body.encode(),
        headers={HEADER: secret, "Content-Type": "application/xml"},
        timeout=TIMEOUT,
    )
    assert xml.status_code == 200 and xml.headers["Content-Type"] == "application/xml", xml.text
    reply = json_codec.to_json(xml_codec.loads(xml.content))
    assert value(payload(child(reply, "BatchItem")), "LocatedItems") == 3
    binary = kmip.post_binary(to_binary(request_message(batch_item("Locate", struct("Attributes")))))
    assert value(payload(child(from_binary(binary.content), "BatchItem")), "LocatedItems") == 3


def test_file_holds_nothing_in_clear(enc_server: ServerProcess) -> None:
    secret = new_database(enc_server)
    kmip = group_client(enc_server, secret)
    h = uuid.uuid4().hex[:12]
    tag, name, contact, material = f"tag-secret-{h}", f"payroll-key-{h}", f"contact-secret-{h}", os.urandom(32)
    key = register(kmip, material, tag_attribute(tag), name_attr(name), text("ContactInformation", contact))
    kmip.create_bare(tag)
    assert material_of(kmip, key) == material
    enc = kmip.call(struct("Encrypt", uid(key), byte_string("Data", b"payroll")))
    assert value(enc, "Data")
    needles = {
        "tag": tag.encode(),
        "name": name.encode(),
        "attribute": contact.encode(),
        "key": material,
        "key hex": material.hex().encode(),
        "key HEX": material.hex().upper().encode(),
        "key base64": base64.b64encode(material).rstrip(b"="),
    }
    blob = b"".join(p.read_bytes() for p in group_files(enc_server, secret))  # .sqlite, -wal, -shm
    assert any(p.name.endswith("-wal") for p in group_files(enc_server, secret))  # recent writes are there
    assert [what for what, needle in needles.items() if needle in blob] == []
    # The location of the data is right: the object is in this file (its id is not secret).
    assert key.encode() in blob


def test_groups_survive_a_restart(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", "--database-type", "sqlite-enc") as server:
        secret = new_database(server)
        key = group_client(server, secret).create_bare("persisted")
    with ServerProcess(tmp_path / "data", "--database-type", "sqlite-enc") as server:
        kmip = group_client(server, secret)
        assert kmip.locate_tag("persisted") == [key]


# ------------------------------------------------------------------------------------------------ configuration


def test_sqlite_enc_refuses_the_socket_listener_and_a_server_secret(tmp_path: Path) -> None:
    p12 = tmp_path / "server.p12"
    p12.write_bytes(b"placeholder")  # only its existence is checked at this stage
    with pytest.raises(ConfigError, match="KmsDatabaseSecret"):
        load(["--database-type", "sqlite-enc", "--socket-server-start", "--https-p12-file", str(p12)], env={})
    with pytest.raises(ConfigError, match="does not apply to sqlite-enc"):
        load(["--database-type", "sqlite-enc"], env={"KMS_DATABASE_SECRET": "x" * 64})
    proc = subprocess.run(
        [*kms_server_command(), "--database-type", "sqlite-enc", "--sqlite-path", str(tmp_path / "d"),
         "--socket-server-start", "--https-p12-file", str(p12)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("KMS_") and k != "COSMIAN_KMS_CONF"},
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "sqlite-enc" in proc.stderr and "KmsDatabaseSecret" in proc.stderr, proc.stderr


def test_engine_keeps_nothing_across_requests(tmp_path: Path) -> None:
    """In process: no decoded-object cache for sqlite-enc, and no store outside a bound request."""
    store = SqliteEncStore(tmp_path)
    try:
        kms = Kms(store)
        assert kms.cache.capacity == 0
        with pytest.raises(StoreError, match="no database selected"), store.session(write=False):
            pass
        secret = store.new_database()
        with store.bind(secret) as bound, bound.session(write=False) as session:
            assert session.find(Query()) == []
        with pytest.raises(StoreError, match="no database selected"), store.session(write=False):
            pass
        with pytest.raises(DatabaseSecretError) as info, store.bind(GroupSecret(secret.group_id, bytes(32))):
            pass
        assert info.value.status == 403
    finally:
        store.close()


def test_clear_database_removes_every_group(tmp_path: Path) -> None:
    store = SqliteEncStore(tmp_path)
    secret = store.new_database()
    store.close()
    (tmp_path / "kept.txt").write_text("not a group file")
    SqliteEncStore(tmp_path, clear=True).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
    reopened = SqliteEncStore(tmp_path)
    try:
        with pytest.raises(DatabaseSecretError, match="does not exist"), reopened.bind(secret):
            pass
    finally:
        reopened.close()
