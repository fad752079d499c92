"""Encryption at rest: an `ObjectStore` wrapper that lets the database see ciphertext and keyed hashes only.

Used around any backend (SQLite, PostgreSQL, MySQL through SqlStore) whenever a database secret is configured,
and per request for `sqlite-enc` (kms.store.sqlite_enc), where the secret comes with each request.

What the database holds, per object row:
- `object` (key material): AES-256-GCM under the `object` key;
- `attributes`: AES-256-GCM under the `attributes` key, of the attributes TTLV together with the real owner, tags
  and names (the engine gets those back from here, never from the index columns);
- `owner`, the `tags` and `names` index tables (and their copies in the row): HMAC-SHA256 under the `index` key,
  with a label per kind (a tag and a name with the same text hash differently), so `find(Query)` still works by
  equality without the database ever seeing the text;
- `object_type`, `state`, `algorithm`, `length`, `version` stay in clear (the engine filters and checks versions on
  them) but are authenticated: they are part of the associated data.
The associated data of each ciphertext is: a label naming the field, the object uid, and those clear columns.
So a ciphertext copied to another row, or to the other field of the same row, or left under an edited clear
column, fails to decrypt (CorruptObjectError naming the object) instead of yielding another object's data.
Plaintexts are padded to a multiple of 64 bytes so attribute sizes leak only coarsely.

Keys: a 32-byte master key is derived once, when the store opens, from the secret: Argon2id (RFC 9106 second
recommended setting, m = 64 MiB, t = 3, p = 4) over a random per-database salt for a passphrase, or taken as is
when the secret is a key already (at least 64 hexadecimal digits; the 32-byte keys of sqlite-enc). HKDF-SHA256
with the same salt then derives one key per purpose (`object`, `attributes`, `index`, `check`). The salt, the
KDF settings and a check value (HMAC of a constant under the `check` key) are stored together as one database
parameter, written atomically once; a wrong secret is refused at open with WrongSecretError, before any row is
read. Per request the cost is one AES-GCM per field read or written and one HMAC per indexed value: no KDF.

The engine's decoded-object cache (kms.core.managed.ObjectCache) sits above this wrapper, so it caches objects
after decryption: a cache hit still reads and decrypts the row (the owner and version come from it), which costs
microseconds, and saves the TTLV decoding.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import logging
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kms.store.base import (
    CorruptObjectError,
    ObjectStore,
    Query,
    Session,
    StoredObject,
    StoreError,
    WrongSecretError,
)

log = logging.getLogger("kms.store")

# The database parameter holding the salt, the KDF settings and the check value (JSON, < 256 characters).
PARAMETER = "encryption"
FORMAT = 1  # first byte of every ciphertext, and "v" of the parameter
NONCE_BYTES = 12
PAD = 64
KEY_BYTES = 32
SALT_BYTES = 16
# RFC 9106 §4, second recommended option: memory-hard enough for a passphrase, ~0.1-0.3 s once per process start.
ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_ITERATIONS = 3
ARGON2_LANES = 4
_CHECK_MESSAGE = b"zt-kms database secret check v1"
# cryptography runs Argon2id lanes on OpenSSL's shared thread pool, and two derivations at once with lanes > 1
# deadlock there (cryptography 50 / OpenSSL 4.0, seen with two threads). Derivations happen once per store
# opening, so they simply take turns.
_ARGON2_LOCK = threading.Lock()
_U32 = struct.Struct(">I")


class UnknownDatabaseError(StoreError):
    """The database has no encryption parameter and the caller may not create one (a sqlite-enc group that was
    never initialised)."""


@dataclasses.dataclass(frozen=True, slots=True)
class EncryptionParameters:
    """What the database keeps about its encryption: public values only (a salt, KDF settings, a check value)."""

    kdf: str  # "argon2id" (passphrase) or "raw" (the secret is a 256-bit key)
    salt: bytes
    check: bytes
    memory_kib: int = ARGON2_MEMORY_KIB
    iterations: int = ARGON2_ITERATIONS
    lanes: int = ARGON2_LANES

    def to_json(self) -> str:
        out: dict[str, object] = {"v": FORMAT, "kdf": self.kdf, "salt": self.salt.hex()}
        if self.kdf == "argon2id":
            out.update(m=self.memory_kib, t=self.iterations, p=self.lanes)
        out["check"] = self.check.hex()
        return json.dumps(out, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> EncryptionParameters:
        try:
            data = json.loads(text)
            if data["v"] != FORMAT or data["kdf"] not in ("argon2id", "raw"):
                raise ValueError(f"unsupported encryption format {data.get('v')}/{data.get('kdf')}")
            kdf = data["kdf"]
            extra = {}
            if kdf == "argon2id":
                extra = {"memory_kib": int(data["m"]), "iterations": int(data["t"]), "lanes": int(data["p"])}
            return cls(kdf=kdf, salt=bytes.fromhex(data["salt"]), check=bytes.fromhex(data["check"]), **extra)
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"the database's encryption parameter is unreadable: {exc}") from None


def is_key(secret: str | bytes) -> bool:
    """A secret that is a key already (no stretching needed): 32+ random bytes, or 64+ hexadecimal digits."""
    if isinstance(secret, bytes):
        return len(secret) >= KEY_BYTES
    text = secret.strip()
    if len(text) < 2 * KEY_BYTES or len(text) % 2:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _master_key(secret: str | bytes, params: EncryptionParameters) -> bytes:
    if params.kdf == "raw":
        if not is_key(secret):
            raise WrongSecretError(
                "this database was initialised with a 256-bit key as its secret (64 hexadecimal digits); "
                "the configured secret is not one"
            )
        return secret if isinstance(secret, bytes) else bytes.fromhex(secret.strip())
    data = secret if isinstance(secret, bytes) else secret.encode()
    kdf = Argon2id(
        salt=params.salt,
        length=KEY_BYTES,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    with _ARGON2_LOCK:
        return kdf.derive(data)


def _hkdf(master: bytes, salt: bytes, purpose: str) -> bytes:
    return HKDF(hashes.SHA256(), KEY_BYTES, salt, b"zt-kms/v1/" + purpose.encode()).derive(master)


class DatabaseKeys:
    """The per-purpose keys of one database, derived once (at open) from its secret and salt.

    Holds AESGCM contexts and the HMAC key: keep one per process for a configured secret, one per request for
    sqlite-enc (dropped with the request).
    """

    __slots__ = ("_attributes", "_index", "_object", "check")

    def __init__(self, secret: str | bytes, params: EncryptionParameters) -> None:
        master = _master_key(secret, params)
        self._object = AESGCM(_hkdf(master, params.salt, "object"))
        self._attributes = AESGCM(_hkdf(master, params.salt, "attributes"))
        self._index = _hkdf(master, params.salt, "index")
        self.check = hmac.digest(_hkdf(master, params.salt, "check"), _CHECK_MESSAGE, "sha256")

    def verify(self, params: EncryptionParameters) -> None:
        if not hmac.compare_digest(self.check, params.check):
            raise WrongSecretError(
                "the database secret is wrong: this database was initialised with another secret "
                "(nothing was read or changed)"
            )

    # ----------------------------------------------------------------------------------------------- index

    def index(self, kind: bytes, value: str) -> str:
        """The keyed hash stored in place of an owner, tag or name (base64url, 43 characters)."""
        digest = hmac.digest(self._index, kind + b"\x00" + value.encode(), "sha256")
        return _b64(digest)

    # ----------------------------------------------------------------------------------------------- rows

    def seal(self, obj: StoredObject) -> StoredObject:
        """The row to store for `obj`: ciphertexts and keyed hashes, clear columns bound as associated data."""
        owner = self.index(b"owner", obj.owner)
        tags = frozenset(self.index(b"tag", t) for t in obj.tags)
        names = tuple(self.index(b"name", n) for n in obj.names)
        row = StoredObject(
            uid=obj.uid,
            object_type=obj.object_type,
            state=obj.state,
            owner=owner,
            object_bytes=b"",
            attributes_bytes=b"",
            tags=tags,
            names=names,
            algorithm=obj.algorithm,
            length=obj.length,
            version=obj.version,
        )
        meta = _pack_meta(obj)
        row.object_bytes = _encrypt(
            self._object, _pad(_U32.pack(len(obj.object_bytes)) + obj.object_bytes), _ad(b"object", row)
        )
        row.attributes_bytes = _encrypt(self._attributes, _pad(meta + obj.attributes_bytes), _ad(b"attributes", row))
        return row

    def open(self, row: StoredObject) -> StoredObject:
        """The object a stored row holds; CorruptObjectError if either ciphertext does not authenticate."""
        obj_plain = _decrypt(self._object, row.object_bytes, _ad(b"object", row), row.uid, "key material")
        attr_plain = _decrypt(self._attributes, row.attributes_bytes, _ad(b"attributes", row), row.uid, "attributes")
        try:
            (size,) = _U32.unpack_from(obj_plain)
            object_bytes = obj_plain[4 : 4 + size]
            owner, tags, names, attributes_bytes = _unpack_meta(attr_plain)
        except (struct.error, ValueError, UnicodeDecodeError):
            # Authenticated but malformed: only a writer holding the keys can produce this, i.e. a bug.
            raise CorruptObjectError(f"object {row.uid}: its decrypted content is malformed") from None
        return StoredObject(
            uid=row.uid,
            object_type=row.object_type,
            state=row.state,
            owner=owner,
            object_bytes=object_bytes,
            attributes_bytes=attributes_bytes,
            tags=frozenset(tags),
            names=tuple(names),
            algorithm=row.algorithm,
            length=row.length,
            version=row.version,
        )

    def index_query(self, query: Query) -> Query:
        return dataclasses.replace(
            query,
            owner=None if query.owner is None else self.index(b"owner", query.owner),
            tags=[self.index(b"tag", t) for t in query.tags],
            names=[self.index(b"name", n) for n in query.names],
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _ad(field: bytes, row: StoredObject) -> bytes:
    """Associated data: the field, the uid (length-prefixed: any text), then the clear columns of the row."""
    uid = row.uid.encode()
    clear = f"{row.version}:{row.object_type}:{row.state}:{row.algorithm}:{row.length}".encode()
    return b"zt-kms/v1/" + field + b"\x00" + _U32.pack(len(uid)) + uid + clear


def _encrypt(aead: AESGCM, plaintext: bytes, ad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return bytes((FORMAT,)) + nonce + aead.encrypt(nonce, plaintext, ad)


def _decrypt(aead: AESGCM, blob: bytes, ad: bytes, uid: str, what: str) -> bytes:
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[0] != FORMAT:
        raise CorruptObjectError(f"object {uid}: its stored {what} are not encrypted in a known format")
    try:
        return aead.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], ad)
    except InvalidTag:
        raise CorruptObjectError(
            f"object {uid}: its stored {what} fail the integrity check (row tampered with or moved from another id)"
        ) from None


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % PAD)


def _pack_str(value: str) -> bytes:
    raw = value.encode()
    return _U32.pack(len(raw)) + raw


def _pack_meta(obj: StoredObject) -> bytes:
    tags = sorted(obj.tags)
    parts = [_pack_str(obj.owner), _U32.pack(len(tags)), *map(_pack_str, tags)]
    parts += [_U32.pack(len(obj.names)), *map(_pack_str, obj.names), _U32.pack(len(obj.attributes_bytes))]
    return b"".join(parts)


def _unpack_meta(data: bytes) -> tuple[str, list[str], list[str], bytes]:
    pos = 0

    def u32() -> int:
        nonlocal pos
        (value,) = _U32.unpack_from(data, pos)
        pos += 4
        return value

    def text() -> str:
        nonlocal pos
        size = u32()
        if pos + size > len(data):
            raise ValueError("truncated")
        value = data[pos : pos + size].decode()
        pos += size
        return value

    owner = text()
    tags = [text() for _ in range(u32())]
    names = [text() for _ in range(u32())]
    size = u32()
    if pos + size > len(data):
        raise ValueError("truncated")
    return owner, tags, names, data[pos : pos + size]


# --------------------------------------------------------------------------------------------------- the store


def open_parameters(
    inner: ObjectStore, secret: str | bytes, *, create: bool = True
) -> tuple[EncryptionParameters, DatabaseKeys]:
    """The database's encryption parameters and the keys the secret gives; the parameters are written the first
    time (atomically: the first of several processes starting at once wins, the others use its salt).

    Raises WrongSecretError for a wrong secret, UnknownDatabaseError when there are no parameters and `create` is
    False, StoreError when the database already holds objects stored in clear.
    """
    if not secret:
        raise StoreError("the database secret is empty")
    stored = inner.get_parameter(PARAMETER)
    if stored is None:
        if not create:
            raise UnknownDatabaseError("this database was never initialised for encryption")
        with inner.session(write=False) as session:
            present = session.find(Query())
        if present:
            raise StoreError(
                f"the database already holds {len(present)} objects stored without encryption: start without a "
                "database secret, or on a new database (existing objects are not encrypted in place)"
            )
        if is_key(secret):
            params = EncryptionParameters(kdf="raw", salt=os.urandom(SALT_BYTES), check=b"")
        else:
            if len(secret) < 16:
                log.warning("the database secret is a short passphrase: prefer 64 random hexadecimal digits")
            params = EncryptionParameters(kdf="argon2id", salt=os.urandom(SALT_BYTES), check=b"")
        keys = DatabaseKeys(secret, params)
        params = dataclasses.replace(params, check=keys.check)
        stored = inner.put_parameter_once(PARAMETER, params.to_json())
        if stored == params.to_json():
            return params, keys
    params = EncryptionParameters.from_json(stored)
    keys = DatabaseKeys(secret, params)
    keys.verify(params)
    return params, keys


def refuse_if_encrypted(inner: ObjectStore) -> None:
    """For a store opened without a secret: an encrypted database must not be served as if it were clear."""
    if inner.get_parameter(PARAMETER) is not None:
        raise WrongSecretError(
            "this database is encrypted at rest: the server needs its database secret "
            "(--database-secret, KMS_DATABASE_SECRET or [db] database_secret)"
        )


def encrypt_at_rest(inner: ObjectStore, secret: str | None) -> ObjectStore:
    """`inner` wrapped when a database secret is configured; `inner` itself otherwise, after checking that it is
    not an encrypted database. Closes `inner` if it cannot be served."""
    try:
        if secret:
            return EncryptedStore.open(inner, secret)
        refuse_if_encrypted(inner)
        return inner
    except BaseException:
        inner.close()
        raise


class EncryptedStore(ObjectStore):
    """Any ObjectStore, seen through the database keys: rows are sealed on write and opened on read."""

    def __init__(self, inner: ObjectStore, keys: DatabaseKeys, *, owns_inner: bool = True) -> None:
        self.inner = inner
        self.keys = keys
        self._owns_inner = owns_inner

    @classmethod
    def open(cls, inner: ObjectStore, secret: str | bytes, *, create: bool = True) -> EncryptedStore:
        """Derive the keys once and check the secret against the database (see open_parameters)."""
        _params, keys = open_parameters(inner, secret, create=create)
        return cls(inner, keys)

    @contextmanager
    def session(self, write: bool) -> Iterator[Session]:
        with self.inner.session(write) as inner:
            yield _EncryptedSession(inner, self.keys)

    def scrub(self) -> None:
        self.inner.scrub()

    def get_parameter(self, name: str) -> str | None:
        return self.inner.get_parameter(name)

    def put_parameter_once(self, name: str, value: str) -> str:
        return self.inner.put_parameter_once(name, value)

    def check(self) -> None:
        self.inner.check()

    def close(self) -> None:
        if self._owns_inner:
            self.inner.close()


class _EncryptedSession(Session):
    """One transaction of the inner store; decrypted rows are remembered for the transaction only, so Locate's
    find (which checks its candidates, below) and the reads that follow decrypt each row once."""

    def __init__(self, inner: Session, keys: DatabaseKeys) -> None:
        self.inner = inner
        self.keys = keys
        self._seen: dict[str, StoredObject] = {}

    @property  # type: ignore[override]
    def writable(self) -> bool:
        return self.inner.writable

    def get(self, uid: str) -> StoredObject | None:
        hit = self._seen.get(uid)
        if hit is not None:
            return hit
        row = self.inner.get(uid)
        if row is None:
            return None
        obj = self.keys.open(row)
        self._seen[uid] = obj
        return obj

    def load_many(self, uids: Sequence[str]) -> list[StoredObject]:
        missing = [u for u in uids if u not in self._seen]
        if missing:
            for row in self.inner.load_many(missing):
                self._seen[row.uid] = self.keys.open(row)
        return [self._seen[u] for u in uids if u in self._seen]

    def insert(self, obj: StoredObject) -> None:
        self._seen.pop(obj.uid, None)
        self.inner.insert(self.keys.seal(obj))

    def update(self, obj: StoredObject, expected_version: int) -> None:
        self._seen.pop(obj.uid, None)
        self.inner.update(self.keys.seal(obj), expected_version)

    def delete(self, uid: str) -> None:
        self._seen.pop(uid, None)
        self.inner.delete(uid)

    def find(self, query: Query) -> list[str]:
        found = self.inner.find(self.keys.index_query(query))
        if not found or (query.owner is None and not query.tags and not query.names):
            return found
        # The index tables are not authenticated: a row moved to another tag, name or owner in the database
        # would otherwise be returned. Check each candidate against its decrypted (authenticated) values.
        return [o.uid for o in self.load_many(found) if _satisfies(o, query)]

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        try:
            with self.inner.savepoint():
                yield
        except BaseException:
            self._seen.clear()  # rows read after a rolled-back write may no longer be what the database holds
            raise


def _satisfies(obj: StoredObject, query: Query) -> bool:
    if query.owner is not None and obj.owner != query.owner:
        return False
    if query.object_type is not None and obj.object_type != query.object_type:
        return False
    if query.algorithm is not None and obj.algorithm != query.algorithm:
        return False
    if query.length is not None and obj.length != query.length:
        return False
    if query.exclude_states and obj.state in query.exclude_states:
        return False
    if not set(query.tags) <= obj.tags:
        return False
    return set(query.names) <= set(obj.names)
