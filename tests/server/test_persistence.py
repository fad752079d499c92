"""Objects survive a restart unchanged, and destroyed key material is really gone from the database files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.server.kmip_http import (
    JsonItem,
    Kmip,
    byte_string,
    child,
    date_time,
    enum,
    integer,
    raw_key_block,
    struct,
    text,
    uid,
    unique_tag,
    value,
    vendor_attribute,
)
from tests.support.server import ServerProcess

DB_FILES = ("kms.sqlite", "kms.sqlite-wal", "kms.sqlite-shm", "kms.sqlite-journal")


@contextmanager
def restarted(server: ServerProcess, *, kill: bool = False) -> Iterator[Kmip]:
    """Stop (or kill) the server, then run a new server process on the same data dir.

    A new ServerProcess rather than `server.start()` again: ServerProcess keeps the readiness permits its reader
    thread released when the first process exited, so a second start() returns before the new process listens.
    """
    if kill:
        server.kill()
    else:
        server.stop()
    again = ServerProcess(server.data_dir, database=server.database)
    again.start()
    try:
        yield Kmip(again.url)
    finally:
        again.stop()


def _database_bytes(data_dir: Path) -> bytes:
    """The raw bytes of the SQLite files of the data dir (main file, WAL and shared memory, if present)."""
    found = [data_dir / name for name in DB_FILES if (data_dir / name).exists()]
    assert data_dir / "kms.sqlite" in found, sorted(p.name for p in data_dir.iterdir())
    return b"".join(p.read_bytes() for p in found)


def _all_files_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def _get_text(kmip: Kmip, key: str) -> str:
    r = kmip.post_bare(struct("Get", uid(key)))
    assert r.status_code == 200, r.text
    return r.text


def _attributes_text(kmip: Kmip, key: str) -> str:
    r = kmip.post_bare(struct("GetAttributes", uid(key)))
    assert r.status_code == 200, r.text
    return r.text


def _material(get_response: JsonItem) -> bytes:
    block = child(child(get_response, "Object"), "KeyBlock")
    return bytes.fromhex(value(child(block, "KeyValue"), "KeyMaterial"))


def _richly_described_key(kmip: Kmip, tag: str) -> str:
    key = kmip.create_bare(
        tag,
        extra=[
            text("Description", "persisted é ✓"),
            struct("Name", text("NameValue", f"name-{tag}"), enum("NameType", "UninterpretedTextString")),
            vendor_attribute("shade", integer("AttributeValue", 7), "acme"),
            date_time("ProtectStopDate", 4_102_444_800),  # 2100-01-01
        ],
    )
    kmip.call(struct("AddAttribute", uid(key), struct("NewAttribute", text("ContactInformation", "ops@example"))))
    _get_text(kmip, key)  # the first Get clears Fresh (a write): do it before the snapshot
    return key


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_object_survives_a_restart_byte_for_byte(fresh_server: ServerProcess, how: str) -> None:
    kmip = Kmip(fresh_server.url)
    tag = unique_tag()
    key = _richly_described_key(kmip, tag)
    enc = kmip.call(struct("Encrypt", uid(key), byte_string("Data", b"across restarts")))
    get_before = _get_text(kmip, key)
    attributes_before = _attributes_text(kmip, key)
    assert len(_material(kmip.call(struct("Get", uid(key))))) == 32

    # kill: no shutdown hook runs, so only what was committed survives.
    with restarted(fresh_server, kill=how == "kill") as kmip:
        assert _get_text(kmip, key) == get_before
        assert _attributes_text(kmip, key) == attributes_before
        assert kmip.locate_tag(tag) == [key]
        dec = kmip.call(
            struct(
                "Decrypt",
                uid(key),
                byte_string("Data", bytes.fromhex(value(enc, "Data"))),
                byte_string("IvCounterNonce", bytes.fromhex(value(enc, "IvCounterNonce"))),
                byte_string("AuthenticatedEncryptionTag", bytes.fromhex(value(enc, "AuthenticatedEncryptionTag"))),
            )
        )
        assert bytes.fromhex(value(dec, "Data")) == b"across restarts"


def test_states_survive_a_restart(fresh_server: ServerProcess) -> None:
    kmip = Kmip(fresh_server.url)
    pre_active = kmip.create()
    revoked = kmip.create_bare(unique_tag())
    kmip.call(struct("Revoke", uid(revoked), text("RevocationReason", "r")))
    destroyed = kmip.create_bare(unique_tag())
    kmip.call(struct("Revoke", uid(destroyed), text("RevocationReason", "r")))
    kmip.call(struct("Destroy", uid(destroyed)))
    before = {k: kmip.attributes(k) for k in (pre_active, revoked, destroyed)}

    with restarted(fresh_server) as kmip:
        assert {k: kmip.attributes(k) for k in before} == before
        assert [kmip.state(k) for k in (pre_active, revoked, destroyed)] == ["PreActive", "Deactivated", "Destroyed"]
        assert kmip.op_fails("Get", uid(destroyed))[0] == "ObjectDestroyed"


# Reads the SQLite files: the other backends' storage is another process's (their scrubbing is documented in
# kms.store.sql, and encryption at rest keeps key material out of them).
@pytest.mark.parametrize("server_database", ["sqlite"], indirect=True)
def test_created_key_material_is_gone_from_the_database_after_destroy(fresh_server: ServerProcess) -> None:
    kmip = Kmip(fresh_server.url)
    key = kmip.create_bare(unique_tag())
    material = _material(kmip.call(struct("Get", uid(key))))
    assert len(material) == 32
    # The check can fail: before Destroy the material is in the database files.
    assert material in _database_bytes(fresh_server.data_dir)

    kmip.call(struct("Revoke", uid(key), text("RevocationReason", "retired")))
    assert material in _database_bytes(fresh_server.data_dir)  # revoking keeps the material
    kmip.call(struct("Destroy", uid(key)))

    assert material not in _database_bytes(fresh_server.data_dir)
    fresh_server.stop()
    assert material not in _all_files_bytes(fresh_server.data_dir)
    assert material.hex().encode() not in _all_files_bytes(fresh_server.data_dir)
    assert material.hex().upper().encode() not in _all_files_bytes(fresh_server.data_dir)


# Reads the SQLite files: the other backends' storage is another process's (their scrubbing is documented in
# kms.store.sql, and encryption at rest keeps key material out of them).
@pytest.mark.parametrize("server_database", ["sqlite"], indirect=True)
def test_registered_key_material_is_gone_after_destroy_among_other_keys(fresh_server: ServerProcess) -> None:
    kmip = Kmip(fresh_server.url)
    doomed_material, kept_material = os.urandom(32), os.urandom(32)

    def register(material: bytes) -> str:
        body = struct(
            "Register",
            enum("ObjectType", "SymmetricKey"),
            struct("Attributes", integer("CryptographicUsageMask", 12)),
            struct("SymmetricKey", raw_key_block(material)),
        )
        return value(kmip.call(body), "UniqueIdentifier")

    doomed, kept = register(doomed_material), register(kept_material)
    for _ in range(3):  # some churn on the doomed row: several versions of it were written
        kmip.call(struct("SetAttribute", uid(doomed), struct("NewAttribute", text("Description", os.urandom(8).hex()))))
    blob = _database_bytes(fresh_server.data_dir)
    assert doomed_material in blob and kept_material in blob

    kmip.call(struct("Revoke", uid(doomed), struct("RevocationReason", enum("RevocationReasonCode", "KeyCompromise"))))
    kmip.call(struct("Destroy", uid(doomed)))

    blob = _database_bytes(fresh_server.data_dir)
    assert doomed_material not in blob
    assert kept_material in blob  # the scrub did not lose other keys
    assert _material(kmip.call(struct("Get", uid(kept)))) == kept_material
    fresh_server.stop()
    files = _all_files_bytes(fresh_server.data_dir)
    assert doomed_material not in files and kept_material in files


# Reads the SQLite files: the other backends' storage is another process's (their scrubbing is documented in
# kms.store.sql, and encryption at rest keeps key material out of them).
@pytest.mark.parametrize("server_database", ["sqlite"], indirect=True)
def test_destroy_with_remove_deletes_the_record(fresh_server: ServerProcess) -> None:
    """Cosmian's Destroy `Remove` flag: the object's record goes too (and its material with it)."""
    kmip = Kmip(fresh_server.url)
    tag = unique_tag()
    key = kmip.create_bare(tag)
    material = _material(kmip.call(struct("Get", uid(key))))
    kmip.call(struct("Revoke", uid(key), text("RevocationReason", "r")))
    out = kmip.call(struct("Destroy", uid(key), {"tag": "Remove", "type": "Boolean", "value": True}))
    assert value(out, "UniqueIdentifier") == key
    assert "not found" in kmip.fail(struct("GetAttributes", uid(key))).lower()
    assert kmip.locate(enum("State", "Destroyed")) == []
    assert material not in _database_bytes(fresh_server.data_dir)
