"""A kms-server with a database secret (env KMS_DATABASE_SECRET, TOML [db] database_secret): what reaches the SQLite
files, and what the server does with a wrong, missing or tampered database.

(Every other server test also runs with a secret: the `sqlite+secret` entry of tests/support/backends.py.)
"""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

from tests.server.kmip_http import (
    Kmip,
    batch_item,
    byte_string,
    child,
    enum,
    integer,
    raw_key_block,
    result,
    struct,
    tag_attribute,
    text,
    uid,
    value,
)
from tests.support.server import ServerProcess, kms_server_command

PASSPHRASE = "a passphrase the operator typed, 2026"


def _register(kmip: Kmip, material: bytes, *attributes: dict) -> str:
    body = struct(
        "Register",
        enum("ObjectType", "SymmetricKey"),
        struct("Attributes", integer("CryptographicUsageMask", 2108), *attributes),
        struct("SymmetricKey", raw_key_block(material)),
    )
    return value(kmip.call(body), "UniqueIdentifier")


def _material(kmip: Kmip, key: str) -> bytes:
    got = kmip.call(struct("Get", uid(key)))
    return bytes.fromhex(value(child(child(child(got, "Object"), "KeyBlock"), "KeyValue"), "KeyMaterial"))


def _files(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.iterdir()) if p.is_file())


def _start_fails(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run kms-server expecting it to refuse to start; its stderr."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_") and k != "COSMIAN_KMS_CONF"}
    full_env.update(env or {})
    proc = subprocess.run(
        [*kms_server_command(), "--sqlite-path", str(data_dir), "--port", "1", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def test_database_secret_from_env_then_toml(tmp_path: Path) -> None:
    data = tmp_path / "data"
    h = uuid.uuid4().hex[:12]
    tag, name, contact, material = f"tag-secret-{h}", f"payroll-key-{h}", f"contact-secret-{h}", os.urandom(32)
    name_attr = struct("Name", text("NameValue", name), enum("NameType", "UninterpretedTextString"))
    with ServerProcess(data, env={"KMS_DATABASE_SECRET": PASSPHRASE}, workers=2) as server:
        kmip = Kmip(server.url)
        key = _register(kmip, material, tag_attribute(tag), name_attr, text("ContactInformation", contact))
        assert kmip.locate_tag(tag) == [key]
        assert kmip.locate(name_attr) == [key]
        running = _files(data)  # main file and WAL while the server runs
        assert PASSPHRASE not in "\n".join(server.log)
    needles = [tag.encode(), name.encode(), contact.encode(), material, material.hex().encode(),
               material.hex().upper().encode(), base64.b64encode(material).rstrip(b"=")]
    for blob in (running, _files(data)):
        assert [n for n in needles if n in blob] == []
    toml = tmp_path / "server.toml"
    toml.write_text(f'[db]\ndatabase_type = "sqlite"\ndatabase_secret = "{PASSPHRASE}"\n')
    with ServerProcess(data, env={"COSMIAN_KMS_CONF": str(toml)}) as server:
        kmip = Kmip(server.url)
        assert _material(kmip, key) == material
        assert kmip.locate_tag(tag) == [key]


def test_wrong_or_missing_secret_is_refused_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, "--database-secret", PASSPHRASE) as server:
        key = Kmip(server.url).create_bare("kept")
    before = _files(data)
    stderr = _start_fails(data, "--database-secret", "not the passphrase")
    assert "database secret is wrong" in stderr, stderr
    stderr = _start_fails(data, env={"KMS_DATABASE_SECRET": "ab" * 32})
    assert "database secret is wrong" in stderr, stderr
    stderr = _start_fails(data)
    assert "encrypted at rest" in stderr and "--database-secret" in stderr, stderr
    assert PASSPHRASE not in stderr
    assert _files(data) == before  # nothing was written by the refused starts
    with ServerProcess(data, "--database-secret", PASSPHRASE) as server:
        assert Kmip(server.url).locate_tag("kept") == [key]


def test_a_clear_database_is_not_encrypted_silently(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data) as server:
        Kmip(server.url).create_bare()
    stderr = _start_fails(data, "--database-secret", PASSPHRASE)
    assert "stored without encryption" in stderr, stderr


def test_tampered_rows_are_reported_with_the_object_id(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, "--database-secret", "9a" * 32) as server:
        kmip = Kmip(server.url)
        a, b = kmip.create_bare(), kmip.create_bare()
        conn = sqlite3.connect(data / "kms.sqlite", timeout=30)
        try:
            rows = dict(conn.execute("SELECT id, object FROM objects").fetchall())
            with conn:
                conn.execute("UPDATE objects SET object = ? WHERE id = ?", (rows[b], a))
        finally:
            conn.close()
        text_ = kmip.fail(struct("Get", uid(a)))
        assert a in text_ and "integrity check" in text_, text_
        # In a RequestMessage: a failed batch item with the same message; the other object is unaffected.
        (bi,) = kmip.batch(batch_item("Encrypt", uid(a), byte_string("Data", b"x")))
        status, reason, message = result(bi)
        assert (status, reason) == ("OperationFailed", "GeneralFailure") and a in (message or ""), bi
        assert len(_material(kmip, b)) == 32
