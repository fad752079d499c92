"""Encryption at rest (kms/store/encrypted.py) on SQLite, PostgreSQL and MariaDB, through the whole engine.

Each backend test opens the store exactly as the server does (kms.store.factory.open_store with a database
secret) and drives it with real KMIP requests through the Kms engine. The database is then read behind the
server's back: a raw dump (SQLite file bytes including the WAL, `pg_dump`, `mysqldump --hex-blob`) must hold none
of the tags, names, owner, attribute values or key bytes (raw, hex, base64) the requests carried, while the same
dump of a database without a secret holds them all (so the search itself is shown to work); rows swapped or
edited in the database must fail to read, with an error naming the object, never as another object's data.

PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB (127.0.0.1:3306, root) are the local services; each test
gets a database of its own. Without a service the test is skipped, or fails when CI=true.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text as sql_text

from kms.config import ServerConfig
from kms.core.kms import Kms
from kms.kmip import json_codec
from kms.kmip.errors import KmipError
from kms.kmip.json_codec import Dialect
from kms.kmip.registry import operation_of_pseudo_tag
from kms.store.base import ObjectStore, StoreError, WrongSecretError
from kms.store.encrypted import PARAMETER, EncryptedStore, EncryptionParameters, open_parameters
from kms.store.factory import open_store
from kms.store.sql import SqlStore
from tests.server.kmip_http import (
    JsonItem,
    byte_string,
    child,
    create_aes,
    enum,
    integer,
    raw_key_block,
    struct,
    tag_attribute,
    tags_id,
    text,
    uid,
    value,
    values,
)

PASSPHRASE = "correct horse battery staple, but longer"
HEX_KEY = "8f" * 32
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306


# ------------------------------------------------------------------------------------------------ backends


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not available: {type(exc).__name__}: {exc}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Backend:
    """One database the tests may open as many times as they like (`config`), dump, and edit behind the server."""

    name: str
    database_type: str
    sqlite_path: str
    database_url: str | None
    dump: Callable[[], bytes]

    def config(self, secret: str | None) -> ServerConfig:
        return ServerConfig(
            database_type=self.database_type,
            sqlite_path=self.sqlite_path,
            database_url=self.database_url,
            database_secret=secret,
        )


def _sqlite_backend(tmp_path: Path) -> Iterator[Backend]:
    directory = tmp_path / "sqlite"

    def dump() -> bytes:  # main file, WAL and shared memory: recent writes live in the WAL
        return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())

    yield Backend("sqlite", "sqlite", str(directory), None, dump)


def _postgresql_backend() -> Iterator[Backend]:
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except Exception as exc:
        _unavailable("PostgreSQL at 127.0.0.1:5432", exc)
    pg_dump = shutil.which("pg_dump") or "/usr/bin/pg_dump"
    name = f"zt_enc_{uuid.uuid4().hex[:16]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"

        def dump() -> bytes:
            return subprocess.run(
                [pg_dump, "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", name],
                check=True,
                capture_output=True,
                timeout=120,
            ).stdout

        try:
            yield Backend("postgresql", "postgresql", "", url, dump)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _mysql_backend() -> Iterator[Backend]:
    try:
        import pymysql

        admin = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", autocommit=True, connect_timeout=5)
    except Exception as exc:
        _unavailable("MariaDB/MySQL at 127.0.0.1:3306", exc)
    mysqldump = shutil.which("mysqldump") or "/usr/bin/mysqldump"
    name = f"zt_enc_{uuid.uuid4().hex[:16]}"
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")

        def dump() -> bytes:
            return subprocess.run(
                [mysqldump, "-h", MYSQL_HOST, "-P", str(MYSQL_PORT), "-u", "root", "--hex-blob", name],
                check=True,
                capture_output=True,
                timeout=120,
            ).stdout

        try:
            yield Backend("mysql", "mysql", "", f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}", dump)
        finally:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield from _sqlite_backend(tmp_path)
    elif request.param == "postgresql":
        yield from _postgresql_backend()
    else:
        yield from _mysql_backend()


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Iterator[Backend]:
    yield from _sqlite_backend(tmp_path)


@contextlib.contextmanager
def opened(backend: Backend, secret: str | None) -> Iterator[ObjectStore]:
    store = open_store(backend.config(secret))
    try:
        yield store
    finally:
        store.close()


def _raw_sql(store: ObjectStore, statement: str, **params: object) -> list[tuple]:
    """Run SQL on the database under the store, bypassing the wrapper (what an attacker with DB access does)."""
    inner = store.inner if isinstance(store, EncryptedStore) else store
    assert isinstance(inner, SqlStore)
    with inner.engine.connect() as conn:
        result = conn.execute(sql_text(statement), params)
        rows = [tuple(r) for r in result] if result.returns_rows else []
        if not inner.is_sqlite:
            conn.commit()
    return rows


def _text(cell: object) -> str:
    return cell.decode() if isinstance(cell, bytes) else str(cell)  # MySQL returns binary-collated ids as bytes


# ------------------------------------------------------------------------------------------------ engine client


class Engine:
    """Bare Cosmian-style operations and RequestMessages straight into a Kms engine, as the HTTP layer calls it."""

    def __init__(self, store: ObjectStore, user: str = "admin") -> None:
        self.kms = Kms(store)
        self.user = user

    def call(self, body: JsonItem) -> JsonItem:
        item = json_codec.from_json(body)
        routed = operation_of_pseudo_tag(item.tag)
        assert routed is not None, body["tag"]
        return json_codec.to_json(self.kms.handle_bare(routed[0], item, self.user), Dialect.COSMIAN)

    def fail(self, body: JsonItem) -> str:
        with pytest.raises(KmipError) as info:
            self.call(body)
        return info.value.message

    def create(self, *extra: JsonItem | None) -> str:
        return value(self.call(create_aes(*extra, mask=2108)), "UniqueIdentifier")

    def register(self, material: bytes, *attributes: JsonItem) -> str:
        body = struct(
            "Register",
            enum("ObjectType", "SymmetricKey"),
            struct("Attributes", integer("CryptographicUsageMask", 2108), *attributes),
            struct("SymmetricKey", raw_key_block(material)),
        )
        return value(self.call(body), "UniqueIdentifier")

    def material(self, key: str) -> bytes:
        got = self.call(struct("Get", uid(key)))  # Cosmian spelling: the managed object is `Object`
        block = child(child(got, "Object"), "KeyBlock")
        return bytes.fromhex(value(child(block, "KeyValue"), "KeyMaterial"))

    def locate(self, *attrs: JsonItem) -> list[str]:
        return values(self.call(struct("Locate", struct("Attributes", *attrs))), "UniqueIdentifier")

    def attribute(self, key: str, name: str) -> object:
        got = self.call(struct("GetAttributes", uid(key), enum("AttributeReference", name)))
        return value(child(got, "Attributes"), name)


def name_attr(name: str) -> JsonItem:
    return struct("Name", text("NameValue", name), enum("NameType", "UninterpretedTextString"))


def _encrypt_decrypt(engine: Engine, key_selector: str, data: bytes) -> bytes:
    enc = engine.call(struct("Encrypt", uid(key_selector), byte_string("Data", data)))
    dec = engine.call(
        struct(
            "Decrypt",
            uid(key_selector),
            byte_string("Data", bytes.fromhex(value(enc, "Data"))),
            byte_string("IvCounterNonce", bytes.fromhex(value(enc, "IvCounterNonce"))),
            byte_string("AuthenticatedEncryptionTag", bytes.fromhex(value(enc, "AuthenticatedEncryptionTag"))),
        )
    )
    return bytes.fromhex(value(dec, "Data"))


# ------------------------------------------------------------------------------------------------ secrets


@dataclass
class Needles:
    """Values sent to the server that must never reach the database in clear."""

    owner: str
    tag: str
    name: str
    contact: str
    material: bytes

    @classmethod
    def new(cls) -> Needles:
        h = uuid.uuid4().hex[:12]
        return cls(f"owner-{h}", f"tag-secret-{h}", f"payroll-key-{h}", f"contact-secret-{h}", os.urandom(32))

    def forms(self) -> dict[str, bytes]:
        m = self.material
        return {
            "owner": self.owner.encode(),
            "tag": self.tag.encode(),
            "name": self.name.encode(),
            "attribute value": self.contact.encode(),
            "key bytes": m,
            "key hex": m.hex().encode(),
            "key HEX": m.hex().upper().encode(),
            "key base64": base64.b64encode(m).rstrip(b"="),
            "key base64url": base64.urlsafe_b64encode(m).rstrip(b"="),
        }


def _populate(engine: Engine, needles: Needles) -> tuple[str, str]:
    """A registered key with known bytes, tag, name and attribute; and a created key with the same tag."""
    registered = engine.register(
        needles.material,
        tag_attribute(needles.tag),
        name_attr(needles.name),
        text("ContactInformation", needles.contact),
    )
    created = engine.create(tag_attribute(needles.tag, "second"), name_attr(needles.name + "-2"))
    engine.call(struct("SetAttribute", uid(created), struct("NewAttribute", text("Description", needles.contact))))
    return registered, created


def _found(dump: bytes, needles: Needles) -> list[str]:
    """The needles present in the dump, as they are or hex-encoded (pg_dump and mysqldump --hex-blob write
    binary columns in hex, so a value inside a clear TTLV blob shows up that way)."""
    lower = dump.lower()
    return [what for what, form in needles.forms().items() if form in dump or form.hex().encode() in lower]


# ------------------------------------------------------------------------------------------------ tests


def test_round_trip_through_the_engine(backend: Backend) -> None:
    """Every operation works on the wrapped store, and after a restart with the same secret."""
    needles = Needles.new()
    with opened(backend, PASSPHRASE) as store:
        assert isinstance(store, EncryptedStore)
        engine = Engine(store, needles.owner)
        registered, created = _populate(engine, needles)
        assert engine.material(registered) == needles.material
        assert engine.attribute(registered, "ContactInformation") == needles.contact
        # Locate by tag, by name, by both, by tag list identifier; the index is keyed hashes.
        assert engine.locate(tag_attribute(needles.tag)) == [registered, created]
        assert engine.locate(tag_attribute(needles.tag, "second")) == [created]
        assert engine.locate(name_attr(needles.name)) == [registered]
        assert engine.locate(name_attr(needles.name), tag_attribute(needles.tag)) == [registered]
        assert engine.locate(name_attr("no-such-name")) == []
        assert engine.material(tags_id(needles.tag, "second")) == engine.material(created)
        assert _encrypt_decrypt(engine, registered, b"payroll data") == b"payroll data"
        # Another owner sees nothing (owner is a keyed hash in the database, checked on the decrypted value).
        other = Engine(store, "someone-else")
        assert other.locate(tag_attribute(needles.tag)) == []
        assert "not found" in other.fail(struct("Get", uid(registered))).lower()
        # Revoke, destroy: state changes are written through the wrapper too.
        engine.call(struct("Revoke", uid(created), text("RevocationReason", "test")))
        engine.call(struct("Destroy", uid(created)))
        assert engine.locate(tag_attribute(needles.tag)) == [registered]
    with opened(backend, PASSPHRASE) as store:
        engine = Engine(store, needles.owner)
        assert engine.material(registered) == needles.material
        assert engine.locate(name_attr(needles.name)) == [registered]
        assert engine.attribute(created, "State") == "Destroyed"


def test_dump_holds_no_secret_in_clear(backend: Backend) -> None:
    needles = Needles.new()
    with opened(backend, PASSPHRASE) as store:
        engine = Engine(store, needles.owner)
        registered, _created = _populate(engine, needles)
        assert engine.material(registered) == needles.material
        dump = backend.dump()  # while the server runs: SQLite's WAL still holds the recent writes
    assert len(dump) > 1000
    assert _found(dump, needles) == []
    assert _found(backend.dump(), needles) == []  # after close (SQLite checkpointed the WAL into the file)


def test_dump_without_secret_holds_everything(backend: Backend) -> None:
    """The control for the test above: without a secret the same search finds every value."""
    needles = Needles.new()
    with opened(backend, None) as store:
        assert not isinstance(store, EncryptedStore)
        _populate(Engine(store, needles.owner), needles)
        dump = backend.dump()
    found = _found(dump, needles)
    for what in ("owner", "tag", "name", "attribute value"):
        assert what in found, (what, found)
    assert {"key bytes", "key hex", "key HEX"} & set(found), found


def test_swapped_rows_fail_to_read(backend: Backend) -> None:
    """Each row's ciphertexts are bound to its id: swapped between two rows, both reads fail, naming the object."""
    with opened(backend, HEX_KEY) as store:
        engine = Engine(store)
        a, b = engine.register(os.urandom(32)), engine.register(os.urandom(32))
        assert engine.material(a) != engine.material(b)  # both decoded and cached by the engine
        rows = {_text(r[0]): r[1:] for r in _raw_sql(store, "SELECT id, object, attributes FROM objects")}
        for mine, theirs in ((a, b), (b, a)):
            _raw_sql(store, "UPDATE objects SET object = :o, attributes = :t WHERE id = :id",
                     o=rows[theirs][0], t=rows[theirs][1], id=mine)
        for key in (a, b):
            message = engine.fail(struct("Get", uid(key)))
            assert key in message and "integrity check" in message, message
        # Only the key material swapped back: the attributes are still the other row's.
        _raw_sql(store, "UPDATE objects SET object = :o WHERE id = :id", o=rows[a][0], id=a)
        assert "integrity check" in engine.fail(struct("Get", uid(a)))
        _raw_sql(store, "UPDATE objects SET attributes = :t WHERE id = :id", t=rows[a][1], id=a)
        assert len(engine.material(a)) == 32  # the original row reads again


def test_edited_clear_column_fails_to_read(sqlite_backend: Backend) -> None:
    """State, type, algorithm, length and version stay in clear for queries but are authenticated."""
    with opened(sqlite_backend, HEX_KEY) as store:
        engine = Engine(store)
        key = engine.create()
        engine.call(struct("Revoke", uid(key), text("RevocationReason", "test")))
        _raw_sql(store, "UPDATE objects SET state = 2 WHERE id = :id", id=key)  # Deactivated -> Active
        assert "integrity check" in engine.fail(struct("Encrypt", uid(key), byte_string("Data", b"x")))
        _raw_sql(store, "UPDATE objects SET state = 3, length = 128 WHERE id = :id", id=key)
        assert "integrity check" in engine.fail(struct("Get", uid(key)))


def test_moved_index_entries_are_not_trusted(sqlite_backend: Backend) -> None:
    """Tag and name index rows pointed at another object of the same owner: Locate and tag selection ignore them."""
    with opened(sqlite_backend, HEX_KEY) as store:
        engine = Engine(store)
        tagged, other = engine.create(tag_attribute("payroll")), engine.create(name_attr("other-name"))
        # (both carry the system tag _kk: only the entries the other object lacks can move)
        _raw_sql(store, "DELETE FROM tags WHERE id = :t AND tag IN (SELECT tag FROM tags WHERE id = :o)", o=other,
                 t=tagged)
        _raw_sql(store, "UPDATE tags SET id = :o WHERE id = :t", o=other, t=tagged)
        assert engine.locate(tag_attribute("payroll")) == []
        assert "no object has the tags" in engine.fail(struct("Get", uid(tags_id("payroll"))))
        _raw_sql(store, "UPDATE names SET id = :t WHERE id = :o", o=other, t=tagged)
        assert engine.locate(name_attr("other-name")) == []
        assert engine.locate() == [tagged, other]  # the objects themselves are intact


def test_wrong_secret_is_refused_at_open(backend: Backend) -> None:
    with opened(backend, PASSPHRASE) as store:
        key = Engine(store).create()
        before = store.get_parameter(PARAMETER)
    for wrong in ("another passphrase of some length", HEX_KEY, PASSPHRASE + " "):
        with pytest.raises(WrongSecretError, match="secret"):
            open_store(backend.config(wrong))
    with pytest.raises(WrongSecretError, match="needs its database secret"):
        open_store(backend.config(None))
    with opened(backend, PASSPHRASE) as store:  # nothing changed
        assert store.get_parameter(PARAMETER) == before
        assert len(Engine(store).material(key)) == 32


def test_existing_clear_database_is_not_encrypted_silently(sqlite_backend: Backend) -> None:
    with opened(sqlite_backend, None) as store:
        Engine(store).create()
    with pytest.raises(StoreError, match="stored without encryption"):
        open_store(sqlite_backend.config(PASSPHRASE))
    with opened(sqlite_backend, None) as store:  # still served in clear
        assert store.get_parameter(PARAMETER) is None


def test_key_derivation_record(sqlite_backend: Backend) -> None:
    """A passphrase is stretched with Argon2id over a stored random salt; 64 hex digits are used as a key."""
    with opened(sqlite_backend, PASSPHRASE) as store:
        params = EncryptionParameters.from_json(store.get_parameter(PARAMETER) or "")
    assert params.kdf == "argon2id" and len(params.salt) == 16 and len(params.check) == 32
    assert (params.memory_kib, params.iterations, params.lanes) == (65536, 3, 4)
    record = json.loads(params.to_json())
    assert PASSPHRASE not in json.dumps(record)
    other = Backend("sqlite2", "sqlite", sqlite_backend.sqlite_path + "-2", None, sqlite_backend.dump)
    with opened(other, HEX_KEY) as store:
        params2 = EncryptionParameters.from_json(store.get_parameter(PARAMETER) or "")
    assert params2.kdf == "raw" and params2.salt != params.salt
    # A database made with a key refuses a passphrase clearly.
    with pytest.raises(WrongSecretError, match="256-bit key"):
        open_store(other.config(PASSPHRASE))


def test_same_secret_different_databases_hash_differently(tmp_path: Path) -> None:
    """The per-database salt: equal tags in two databases with the same secret do not give equal index values."""
    hashes = []
    for n in (1, 2):
        store = EncryptedStore.open(SqlStore.sqlite(tmp_path / str(n)), HEX_KEY)
        try:
            Engine(store).create(tag_attribute("same-tag"))
            hashes.append({_text(r[0]) for r in _raw_sql(store, "SELECT tag FROM tags")})
        finally:
            store.close()
    assert hashes[0] and not hashes[0] & hashes[1]


def test_nodes_starting_together_agree_on_one_salt(backend: Backend) -> None:
    """Several processes or nodes opening an empty database at once: one parameter record wins, all use it."""
    barrier = threading.Barrier(4)
    results: list[object] = [None] * 4

    def start(i: int) -> None:
        if backend.name == "sqlite":
            inner = SqlStore.sqlite(backend.sqlite_path)
        else:
            inner = SqlStore(backend.database_url or "")
        try:
            barrier.wait()
            results[i] = open_parameters(inner, PASSPHRASE)[0]
        except BaseException as exc:
            results[i] = exc
        finally:
            inner.close()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, EncryptionParameters) for r in results), results
    assert len({r.salt for r in results}) == 1  # type: ignore[union-attr]
    with opened(backend, PASSPHRASE) as store:
        assert Engine(store).create()


def test_batch_savepoint_rollback_does_not_serve_stale_rows(sqlite_backend: Backend) -> None:
    """A failed item of a batch is rolled back alone; rows the wrapper remembered for it are forgotten."""
    from tests.server.kmip_http import batch_item, children, request_message, result

    with opened(sqlite_backend, HEX_KEY) as store:
        engine = Engine(store)
        key = engine.create()
        message = request_message(
            batch_item("SetAttribute", uid(key), struct("NewAttribute", text("Description", "kept"))),
            batch_item("Get", uid("no-such-object")),
            batch_item("GetAttributes", uid(key), enum("AttributeReference", "Description")),
            header=[enum("BatchErrorContinuationOption", "Continue")],
        )
        out = json_codec.to_json(engine.kms.handle_message(json_codec.from_json(message), "admin"), Dialect.OASIS)
        statuses = [result(bi)[0] for bi in children(out, "BatchItem")]
        assert statuses == ["Success", "OperationFailed", "Success"], statuses
        assert engine.attribute(key, "Description") == "kept"


def test_rows_are_not_readable_with_sqlite_alone(sqlite_backend: Backend) -> None:
    """What a reader of the file sees: keyed hashes for owner, tags and names; ciphertext for the rest."""
    with opened(sqlite_backend, PASSPHRASE) as store:
        Engine(store, "alice").create(tag_attribute("visible?"), name_attr("named?"))
    conn = sqlite3.connect(Path(sqlite_backend.sqlite_path) / "kms.sqlite")
    try:
        row = conn.execute("SELECT owner, tags_json, names_json, object FROM objects").fetchone()
    finally:
        conn.close()
    owner, tags_json, names_json, obj = row
    assert owner != "alice" and len(owner) == 43
    assert "visible?" not in tags_json and "named?" not in names_json
    assert obj[0] == 1 and len(obj) % 16 == 13  # format byte, nonce, padded ciphertext, tag
