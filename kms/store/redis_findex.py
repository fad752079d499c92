"""Redis backend whose values and search index are encrypted (`--database-type redis-findex`).

Redis is an untrusted place: it must never see key material, an attribute, a tag, a name or an owner in clear, and
it must not be able to swap values around unnoticed. Everything is encrypted in this process under keys derived
from `--redis-master-password`; Redis only stores ciphertext and keyed hashes.

Keys (all under one prefix, `zt-kms:` by default, `?key_prefix=...` in the URL to choose another; several stores can
share one Redis database, and `--clear-database` removes only this prefix):

    <P>meta             JSON: format version, Argon2id salt and cost, and an AES-GCM encrypted check value
    <P>label            HMAC(label-key, label): fingerprint of the label the index is built with (never the label)
    <P>seq              counter giving each insert its creation order (a plain integer)
    <P>gen              counter bumped by every write transaction (lets a label rotation detect concurrent writes)
    <P>params           HASH of database parameters (`put_parameter_once`), each value AES-GCM encrypted
    <P>o:<oid>          one object: AES-256-GCM(value-key, nonce, record, AD = "object" || oid)
    <P>i:<iid>          one index set: SET of members (below)

    oid    = base64url(HMAC-SHA256(object-id-key, uid)[:16])     the uid is never in a key name
    iid    = base64url(HMAC-SHA256(index-key(label), field || 0 || value)[:16])
             index-key(label) = HMAC(index-key, "label" || 0 || label): the label is mixed into every index key
    member = AES-SIV(member-key, seq(8 bytes) || padded uid)       deterministic, so one object has one member
    record = uid, type, state, owner, algorithm, length, version, seq, tags, names, object bytes, attribute bytes,
             zero-padded to a multiple of 256 bytes before encryption

Fields indexed (what `Query` filters on): `all` (every object), `owner`, `type`, `state`, `alg`, `len`, each `tag`,
each `name`. `find` intersects the sets server-side (SINTER), subtracts the excluded states (one SINTER per
excluded state, same round trip), decrypts the members locally to (seq, uid) and sorts by seq: creation order is
inside the ciphertext, not in a Redis score. A query by uids reads the records and filters them locally.

The associated data binds each value to its key: a record copied under another object's key, or the index check
value moved, fails authentication (StoreError), it is never silently served as another object. The oid is checked
against the uid inside the record as well.

Key derivation. master = Argon2id(password, salt) once per process and store (cached per (password, salt, cost),
so gunicorn workers forked after the parent opened the store do not derive again); then HKDF-SHA256 with one `info`
per purpose (values, members, object ids, index, label fingerprint). Cosmian derives its Redis-Findex master key
with Argon2 defaults and the fixed salt `b"Default salt used in KMS crates"`. We do not: a fixed salt lets one
precomputed dictionary attack every deployment at once, and following it would buy no compatibility, because the
layout here is not Cosmian's Findex format (neither server can read the other's Redis data). Each store gets a
random 16-byte salt, stored in `<P>meta` next to the Argon2id cost (default RFC 9106's second recommendation:
t=3, p=4, m=64 MiB); two stores sharing a password therefore have independent keys. A wrong password is detected at
start: the check value in `<P>meta` does not decrypt, and opening fails with a clear StoreError.

Label rotation. The label fingerprint is stored in `<P>label`. When a server starts with a label whose fingerprint
differs, it re-keys the index in one MULTI/EXEC: it reads every record, deletes every `<P>i:*` set (it cannot
recompute the old names without the old label, nor does it need to) and writes the sets under the new label, then
stores the new fingerprint. It WATCHes `<P>label` and `<P>gen`, so a write committed meanwhile by a node still using
the old label aborts the rotation, which then starts over; two nodes rotating to the same label at once end with
one index. Afterwards, nodes still running with the old label refuse to write or search (every write transaction
WATCHes and checks `<P>label`, every search reads it in the same round trip) with an error telling the operator to
restart them with the new label, instead of silently indexing under keys nobody reads. Rotate with all nodes
restarted on the new label; the rotation holds the whole index in one transaction (fine up to ~10^5 objects).

Transactions. Redis has no rollback, so a write session reads through (WATCH + GET in one round trip, the first
one also WATCHing and reading `<P>label`), buffers its writes (reads see them: read-your-own-writes, also in
`find`), and commits with MULTI ... EXEC: if any watched key changed since it was read, EXEC returns nil and the
session raises ConflictError, which the engine answers by re-running the whole request. `savepoint()` snapshots the
buffer. Read sessions send no WATCH and raise ReadOnlySession on writes. A Get is one round trip (GET), a Create two
(WATCH+GET+INCR seq, then MULTI..EXEC), a Locate two (SINTERs+GET label, then MGET). Phantoms are not prevented: a
write session does not WATCH the index sets its searches read (as PostgreSQL READ COMMITTED does not lock them).

What Redis (or whoever reads its memory, RDB or AOF files) still learns:
- the number of objects, record sizes rounded up to 256 bytes (an RSA key is visibly bigger than an AES key), and
  the counters (inserts and write transactions made);
- for each index set, its size, and which objects share it: equal owners, tags, names or types show as equal
  (hidden) sets with the same members; the `state` sets are few, so their sizes hint at what they are;
- access patterns: which object keys and index sets each request reads and writes, and when;
- old versions of records, until Redis rewrites its AOF/RDB; and Redis can roll a record back to an older
  ciphertext of the same object (authentication does not detect replays of an older version).
It does not learn key material, attribute values, tags, names, owners, uids or the creation order.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kms.store.base import (
    ConflictError,
    CorruptObjectError,
    DuplicateError,
    ObjectStore,
    Query,
    ReadOnlySession,
    Session,
    StoredObject,
    StoreError,
    TransientStoreError,
    WrongSecretError,
)

FORMAT_VERSION = 1
DEFAULT_PREFIX = "zt-kms:"
PREFIX_PARAMETER = "key_prefix"
_CHECK_PLAINTEXT = b"zt-kms redis-findex check v1"
_CHECK_AD = b"zt-kms/redis-findex/check"
_OBJECT_AD = b"zt-kms/redis-findex/object\x00"
_MEMBER_AD = [b"zt-kms/redis-findex/member"]
_PARAM_AD = b"zt-kms/redis-findex/parameter\x00"
_RECORD_BLOCK = 256  # records are padded to a multiple of this, so sizes leak only coarsely
_ROTATION_ATTEMPTS = 20
_CHUNK = 1000  # keys per command when scanning, deleting or watching many keys
_HEADER = struct.Struct(">III")
_SEQ = struct.Struct(">Q")
_NETWORK_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


class WrongPasswordError(WrongSecretError):
    """The master password does not open this store (its check value does not decrypt)."""


@dataclasses.dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost, recorded in the store when it is created (later starts use the recorded cost).

    Defaults: RFC 9106 §4 second recommended option (t=3, p=4, 64 MiB), about 0.25 s once per process.
    """

    iterations: int = 3
    lanes: int = 4
    memory_cost: int = 65536  # KiB


_master_cache: dict[bytes, bytes] = {}
_master_lock = threading.Lock()


def derive_master_key(password: str, salt: bytes, params: KdfParams) -> bytes:
    """Argon2id(password, salt) -> 32 bytes, memoised per (password, salt, cost) for the life of the process.

    Memoised because gunicorn forks its workers after the parent has opened (and closed) the store: they inherit
    the key instead of each paying the deliberately slow derivation again.
    """
    fingerprint = hashlib.sha256(json.dumps([password, salt.hex(), dataclasses.astuple(params)]).encode()).digest()
    with _master_lock:
        hit = _master_cache.get(fingerprint)
    if hit is not None:
        return hit
    key = Argon2id(
        salt=salt, length=32, iterations=params.iterations, lanes=params.lanes, memory_cost=params.memory_cost
    ).derive(password.encode())
    with _master_lock:
        if len(_master_cache) >= 16:
            _master_cache.clear()
        _master_cache[fingerprint] = key
    return key


def _hkdf(master: bytes, purpose: str, length: int = 32) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=f"zt-kms/redis-findex/v1/{purpose}".encode()
    ).derive(master)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _pad_uid(uid: str) -> bytes:
    """ISO/IEC 7816-4 padding to 16 bytes, so member sizes do not give the exact uid length."""
    raw = uid.encode() + b"\x80"
    return raw + b"\x00" * (-len(raw) % 16)


def _unpad_uid(data: bytes) -> str:
    return data[: data.rindex(b"\x80")].decode()


@dataclasses.dataclass(slots=True)
class _Rec:
    """An object with its creation sequence number (the store's order for find)."""

    obj: StoredObject
    seq: int


class _Crypto:
    """The per-purpose keys, derived once when the store opens."""

    def __init__(self, master: bytes, label: str) -> None:
        self.values = AESGCM(_hkdf(master, "values"))
        self.members = AESSIV(_hkdf(master, "members", 64))
        self.object_ids = _hkdf(master, "object-ids")
        self._index = _hkdf(master, "index")
        self._label_fp = _hkdf(master, "label-fingerprint")
        self.label_fp = b""
        self.index = b""
        self.set_label(label)

    def set_label(self, label: str) -> None:
        self.label_fp = hmac.digest(self._label_fp, label.encode(), "sha256")
        self.index = hmac.digest(self._index, b"label\x00" + label.encode(), "sha256")

    # ---------------------------------------------------------------------------------------------- values

    def seal(self, plaintext: bytes, ad: bytes) -> bytes:
        nonce = os.urandom(12)
        return b"\x01" + nonce + self.values.encrypt(nonce, plaintext, ad)

    def open(self, blob: bytes, ad: bytes) -> bytes:
        if len(blob) < 29 or blob[0] != 1:
            raise InvalidTag()
        return self.values.decrypt(blob[1:13], blob[13:], ad)

    def oid(self, uid: str) -> str:
        return _b64(hmac.digest(self.object_ids, uid.encode(), "sha256")[:16])

    def member(self, rec: _Rec) -> bytes:
        return self.members.encrypt(_SEQ.pack(rec.seq) + _pad_uid(rec.obj.uid), _MEMBER_AD)

    def open_member(self, member: bytes) -> tuple[int, str]:
        plain = self.members.decrypt(member, _MEMBER_AD)
        return _SEQ.unpack_from(plain)[0], _unpad_uid(plain[_SEQ.size :])

    def iid(self, field: bytes, value: str | int) -> str:
        return _b64(hmac.digest(self.index, field + b"\x00" + str(value).encode(), "sha256")[:16])


def _encode_record(rec: _Rec) -> bytes:
    o = rec.obj
    header = json.dumps(
        {
            "u": o.uid,
            "t": o.object_type,
            "s": o.state,
            "o": o.owner,
            "a": o.algorithm,
            "l": o.length,
            "v": o.version,
            "q": rec.seq,
            "g": sorted(o.tags),
            "n": list(o.names),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    body = b"".join(
        (
            _HEADER.pack(len(header), len(o.object_bytes), len(o.attributes_bytes)),
            header,
            o.object_bytes,
            o.attributes_bytes,
        )
    )
    return body + b"\x00" * (-len(body) % _RECORD_BLOCK)


def _decode_record(plain: bytes) -> _Rec:
    hlen, olen, alen = _HEADER.unpack_from(plain)
    pos = _HEADER.size
    h = json.loads(plain[pos : pos + hlen])
    pos += hlen
    obj = StoredObject(
        uid=h["u"],
        object_type=h["t"],
        state=h["s"],
        owner=h["o"],
        object_bytes=plain[pos : pos + olen],
        attributes_bytes=plain[pos + olen : pos + olen + alen],
        tags=frozenset(h["g"]),
        names=tuple(h["n"]),
        algorithm=h["a"],
        length=h["l"],
        version=h["v"],
    )
    return _Rec(obj, h["q"])


def _copy(o: StoredObject) -> StoredObject:
    """A copy the caller may change without changing the session's state (fields are immutable values; the
    constructor is several times faster than dataclasses.replace, which matters for a Locate of many objects)."""
    return StoredObject(
        o.uid,
        o.object_type,
        o.state,
        o.owner,
        o.object_bytes,
        o.attributes_bytes,
        o.tags,
        o.names,
        o.algorithm,
        o.length,
        o.version,
    )


def _matches(obj: StoredObject, query: Query) -> bool:
    """The query evaluated on one record (buffered writes, and queries by uid)."""
    return (
        (query.owner is None or obj.owner == query.owner)
        and (query.object_type is None or obj.object_type == query.object_type)
        and (query.algorithm is None or obj.algorithm == query.algorithm)
        and (query.length is None or obj.length == query.length)
        and obj.state not in query.exclude_states
        and (query.uids is None or obj.uid in query.uids)
        and all(t in obj.tags for t in query.tags)
        and all(n in obj.names for n in query.names)
    )


def _split_url(url: str) -> tuple[str, str]:
    """(url without our key_prefix parameter, prefix): redis-py rejects query parameters it does not know."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    prefix = DEFAULT_PREFIX
    kept = []
    for name, value in params:
        if name == PREFIX_PARAMETER:
            prefix = value
        else:
            kept.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), prefix


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class RedisFindexStore(ObjectStore):
    """The `redis-findex` store: encrypted values and keyed-hash index in Redis (see the module docstring)."""

    def __init__(
        self,
        url: str,
        master_password: str,
        label: str,
        *,
        clear: bool = False,
        prefix: str | None = None,
        kdf: KdfParams | None = None,
        max_connections: int = 64,
        socket_timeout: float = 10.0,
    ) -> None:
        """Connect, create or open the store under `prefix` (else the URL's `key_prefix`, else `zt-kms:`).

        `kdf` is the Argon2id cost for a store created now; an existing store keeps the cost it was created with.
        Raises StoreError (WrongPasswordError for a wrong password) when the store cannot be opened.
        """
        if not master_password:
            raise StoreError("redis-findex needs a master password")
        if not label:
            raise StoreError("redis-findex needs a Findex label")
        clean_url, url_prefix = _split_url(url)
        self.prefix = (prefix if prefix is not None else url_prefix).encode()
        self._url = _redacted(clean_url)
        self.pool = redis.ConnectionPool.from_url(
            clean_url,
            max_connections=max_connections,
            socket_timeout=socket_timeout,
            socket_connect_timeout=5.0,
            socket_keepalive=True,
            health_check_interval=30,
        )
        self.client = redis.Redis(connection_pool=self.pool)
        self.k_meta = self.prefix + b"meta"
        self.k_label = self.prefix + b"label"
        self.k_seq = self.prefix + b"seq"
        self.k_gen = self.prefix + b"gen"
        self.k_params = self.prefix + b"params"
        try:
            if clear:
                self._clear()
            self.crypto = self._open_meta(master_password, label, kdf or KdfParams())
            self._ensure_label()
        except _NETWORK_ERRORS as exc:
            self.pool.disconnect()
            raise StoreError(f"cannot reach Redis at {self._url}: {exc}") from exc
        except redis.RedisError as exc:
            self.pool.disconnect()
            raise StoreError(f"Redis error at {self._url}: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            self.pool.disconnect()
            raise

    # ---------------------------------------------------------------------------------------------- keys

    def object_key(self, uid: str) -> bytes:
        return self.prefix + b"o:" + self.crypto.oid(uid).encode()

    def index_keys(self, obj: StoredObject) -> set[bytes]:
        """Every index set an object belongs to (under the current label)."""
        c = self.crypto
        ids = {
            c.iid(b"all", ""),
            c.iid(b"owner", obj.owner),
            c.iid(b"type", obj.object_type),
            c.iid(b"state", obj.state),
        }
        if obj.algorithm is not None:
            ids.add(c.iid(b"alg", obj.algorithm))
        if obj.length is not None:
            ids.add(c.iid(b"len", obj.length))
        ids.update(c.iid(b"tag", t) for t in obj.tags)
        ids.update(c.iid(b"name", n) for n in obj.names)
        return {self.prefix + b"i:" + i.encode() for i in ids}

    def index_key(self, field: bytes, value: str | int) -> bytes:
        return self.prefix + b"i:" + self.crypto.iid(field, value).encode()

    def seal_record(self, rec: _Rec) -> bytes:
        return self.crypto.seal(_encode_record(rec), _OBJECT_AD + self.crypto.oid(rec.obj.uid).encode())

    def open_record(self, key: bytes, blob: bytes, uid: str | None = None) -> _Rec:
        """Decrypt the record stored under `key` (the key of `uid` when given); StoreError if it does not
        authenticate as that key's value."""
        oid = key[len(self.prefix) + 2 :]
        try:
            rec = _decode_record(self.crypto.open(blob, _OBJECT_AD + oid))
        except (InvalidTag, ValueError, KeyError, struct.error) as exc:
            raise CorruptObjectError(
                f"the Redis value of object {uid or key.decode()!r} failed authentication: it was altered or moved"
            ) from exc
        # With `uid`, `key` was computed from it: comparing the uids is enough.
        belongs = rec.obj.uid == uid if uid is not None else self.crypto.oid(rec.obj.uid).encode() == oid
        if not belongs:
            raise CorruptObjectError(
                f"the Redis value of object {uid or key.decode()!r} failed authentication: it belongs to another key"
            )
        return rec

    # ---------------------------------------------------------------------------------------------- start-up

    def _clear(self) -> None:
        """Remove this prefix's keys only: the Redis database may be shared (never FLUSHDB)."""
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=_glob_escape(self.prefix.decode()) + "*", count=_CHUNK):
            batch.append(key)
            if len(batch) >= _CHUNK:
                self.client.unlink(*batch)
                batch.clear()
        if batch:
            self.client.unlink(*batch)

    def _open_meta(self, password: str, label: str, kdf: KdfParams) -> _Crypto:
        while True:
            raw = self.client.get(self.k_meta)
            if raw is not None:
                return self._unlock(raw, password, label)
            salt = os.urandom(16)
            crypto = _Crypto(derive_master_key(password, salt, kdf), label)
            meta = {
                "format": FORMAT_VERSION,
                "kdf": {"algorithm": "argon2id", "salt": _b64(salt), **dataclasses.asdict(kdf)},
                "check": _b64(crypto.seal(_CHECK_PLAINTEXT, _CHECK_AD)),
            }
            with self.client.pipeline() as pipe:
                try:
                    pipe.watch(self.k_meta)
                    if pipe.exists(self.k_meta):
                        continue  # another node created the store meanwhile: open theirs
                    pipe.multi()
                    pipe.set(self.k_meta, json.dumps(meta))
                    pipe.set(self.k_label, crypto.label_fp)
                    pipe.execute()
                    return crypto
                except redis.WatchError:
                    continue

    def _unlock(self, raw: bytes, password: str, label: str) -> _Crypto:
        try:
            meta = json.loads(raw)
            version = int(meta["format"])
            k = meta["kdf"]
            salt = base64.urlsafe_b64decode(k["salt"] + "==")
            kdf = KdfParams(iterations=int(k["iterations"]), lanes=int(k["lanes"]), memory_cost=int(k["memory_cost"]))
            check = base64.urlsafe_b64decode(meta["check"] + "==")
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"the store metadata at {self.k_meta.decode()!r} is unreadable") from exc
        if version > FORMAT_VERSION:
            raise StoreError(
                f"the Redis store format {version} is newer than the format {FORMAT_VERSION} this server reads; "
                "upgrade the server"
            )
        crypto = _Crypto(derive_master_key(password, salt, kdf), label)
        try:
            ok = crypto.open(check, _CHECK_AD) == _CHECK_PLAINTEXT
        except InvalidTag:
            ok = False
        if not ok:
            raise WrongPasswordError(
                f"wrong --redis-master-password: it does not open the store under prefix {self.prefix.decode()!r} "
                f"at {self._url}"
            )
        return crypto

    def _ensure_label(self) -> None:
        """Re-key the index if it was built under another label (see the module docstring)."""
        for _ in range(_ROTATION_ATTEMPTS):
            with self.client.pipeline() as pipe:
                try:
                    pipe.watch(self.k_label, self.k_gen)
                    if pipe.get(self.k_label) == self.crypto.label_fp:
                        return
                    records = list(self._scan_records())
                    stale = list(self.client.scan_iter(match=_glob_escape(self.prefix.decode()) + "i:*", count=_CHUNK))
                    fresh: dict[bytes, list[bytes]] = {}
                    for rec in records:
                        member = self.crypto.member(rec)
                        for key in self.index_keys(rec.obj):
                            fresh.setdefault(key, []).append(member)
                    pipe.multi()
                    for i in range(0, len(stale), _CHUNK):
                        pipe.unlink(*stale[i : i + _CHUNK])
                    for key, members in fresh.items():
                        for i in range(0, len(members), _CHUNK):
                            pipe.sadd(key, *members[i : i + _CHUNK])
                    pipe.set(self.k_label, self.crypto.label_fp)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue
        raise StoreError(
            "could not re-key the Redis index under the new label: the store kept changing; "
            "stop the nodes still running with the old --redis-findex-label and start again"
        )

    def _scan_records(self) -> Iterator[_Rec]:
        keys = list(self.client.scan_iter(match=_glob_escape(self.prefix.decode()) + "o:*", count=_CHUNK))
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            for key, blob in zip(chunk, self.client.mget(chunk), strict=True):
                if blob is not None:
                    yield self.open_record(key, blob)

    # ---------------------------------------------------------------------------------------------- interface

    @contextmanager
    def session(self, write: bool) -> Iterator[Session]:
        s = _RedisSession(self, write)
        try:
            yield s
            s.commit()
        except BaseException:
            s.abort()
            raise
        finally:
            s.release()

    def scrub(self) -> None:
        """Nothing to do here: Redis holds only ciphertext, and a deleted value leaves the dataset at once.

        Older ciphertexts may stay in Redis's own AOF/RDB files until Redis rewrites them; we do not force a
        BGREWRITEAOF, which would stall a Redis shared with others for what is already encrypted data.
        """

    def get_parameter(self, name: str) -> str | None:
        if name == "db_version":
            return str(FORMAT_VERSION)
        try:
            sealed = self.client.hget(self.k_params, name)
        except _NETWORK_ERRORS as exc:
            raise TransientStoreError(f"Redis connection failed: {type(exc).__name__}") from exc
        except redis.RedisError as exc:
            raise StoreError(f"Redis error: {type(exc).__name__}") from exc
        return None if sealed is None else self._open_parameter(name, sealed)

    def put_parameter_once(self, name: str, value: str) -> str:
        """HSETNX: of several nodes starting at once, the first value written wins and all of them return it.

        Parameters are encrypted like everything else (AD = their name), although today's are not secret.
        """
        sealed = self.crypto.seal(value.encode(), _PARAM_AD + name.encode())
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hsetnx(self.k_params, name, sealed)
                pipe.hget(self.k_params, name)
                stored = pipe.execute()[1]
        except _NETWORK_ERRORS as exc:
            raise TransientStoreError(f"Redis connection failed: {type(exc).__name__}") from exc
        except redis.RedisError as exc:
            raise StoreError(f"Redis error: {type(exc).__name__}") from exc
        if stored is None:
            raise StoreError(f"the database parameter {name} vanished while it was being written")
        return self._open_parameter(name, stored)

    def _open_parameter(self, name: str, sealed: bytes) -> str:
        try:
            return self.crypto.open(sealed, _PARAM_AD + name.encode()).decode()
        except (InvalidTag, UnicodeDecodeError) as exc:
            raise CorruptObjectError(f"the database parameter {name} failed authentication") from exc

    def close(self) -> None:
        self.pool.disconnect()


class _RedisSession(Session):
    """One optimistic transaction: reads through (WATCHed when writable), writes buffered until commit."""

    def __init__(self, store: RedisFindexStore, writable: bool) -> None:
        self.store = store
        self.writable = writable
        self._conn: Any = None
        self._broken = False
        self._watching = False
        self._base: dict[str, _Rec | None] = {}  # what Redis held when first read in this session
        self._pending: dict[str, _Rec | None] = {}  # buffered final state (None: deleted)

    # ---------------------------------------------------------------------------------------------- wire

    def _roundtrip(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send the commands together, read every reply (error replies come back as ResponseError values)."""
        try:
            if self._conn is None:
                self._conn = self.store.pool.get_connection()
            conn = self._conn
            conn.send_packed_command(conn.pack_commands(commands))
            out: list[Any] = []
            for _ in commands:
                try:
                    out.append(conn.read_response())
                except redis.ResponseError as exc:
                    out.append(exc)
            return out
        except _NETWORK_ERRORS as exc:
            self._broken = True
            raise TransientStoreError(f"Redis connection failed: {type(exc).__name__}") from exc
        except redis.RedisError as exc:
            self._broken = True
            raise StoreError(f"Redis error: {type(exc).__name__}") from exc

    def _read(self, keys: list[bytes], extra: Sequence[tuple[Any, ...]] = ()) -> tuple[list[Any], list[Any]]:
        """GET the keys (WATCHing them first in write sessions; the first time also checking the label) plus any
        extra commands, in one round trip: (values, extra replies)."""
        cmds: list[tuple[Any, ...]] = []
        check_label = self.writable and not self._watching
        if self.writable:
            cmds.append(("WATCH", self.store.k_label, *keys) if check_label else ("WATCH", *keys))
            if check_label:
                cmds.append(("GET", self.store.k_label))
        cmds.append(("MGET", *keys))
        cmds.extend(extra)
        replies = self._roundtrip(cmds)
        if self.writable:
            self._watching = True
            if check_label:
                self._check_label(replies[1])
        values = replies[len(cmds) - len(extra) - 1]
        if isinstance(values, Exception):
            raise StoreError(f"Redis refused a read: {values}")
        return values, replies[len(cmds) - len(extra) :]

    def _check_label(self, fp: Any) -> None:
        if fp != self.store.crypto.label_fp:
            raise StoreError(
                "the Redis index was re-keyed under another --redis-findex-label (by another node): "
                "restart this node with the current label"
            )

    def _writing(self) -> None:
        if not self.writable:
            raise ReadOnlySession()

    def _known(self, uid: str) -> bool:
        return uid in self._pending or uid in self._base

    def _current(self, uid: str) -> _Rec | None:
        return self._pending[uid] if uid in self._pending else self._base[uid]

    def _fetch(self, uids: Iterable[str], extra: Sequence[tuple[Any, ...]] = ()) -> list[Any]:
        missing = list(dict.fromkeys(u for u in uids if not self._known(u)))
        if not missing and not extra:
            return []
        if not missing:
            return self._roundtrip(list(extra))
        keys = [self.store.object_key(u) for u in missing]
        values, replies = self._read(keys, extra)
        for uid, key, blob in zip(missing, keys, values, strict=True):
            self._base[uid] = None if blob is None else self.store.open_record(key, blob, uid)
        return replies

    # ---------------------------------------------------------------------------------------------- Session

    def get(self, uid: str) -> StoredObject | None:
        self._fetch((uid,))
        rec = self._current(uid)
        return None if rec is None else _copy(rec.obj)

    def load_many(self, uids: Sequence[str]) -> list[StoredObject]:
        self._fetch(uids)
        out = []
        for uid in uids:
            rec = self._current(uid)
            if rec is not None:
                out.append(_copy(rec.obj))
        return out

    def insert(self, obj: StoredObject) -> None:
        self._writing()
        incr = ("INCR", self.store.k_seq)  # the creation order; a number lost to a failed insert leaves a gap
        if self._known(obj.uid):  # read earlier in this session (absent, or deleted and now inserted again)
            if self._current(obj.uid) is not None:
                raise DuplicateError(f"an object with id {obj.uid!r} already exists")
            replies = self._roundtrip([incr])
        else:
            replies = self._fetch((obj.uid,), [incr])  # one round trip: WATCH, GET and INCR
            if self._current(obj.uid) is not None:
                raise DuplicateError(f"an object with id {obj.uid!r} already exists")
        seq = replies[0]
        if not isinstance(seq, int):
            raise StoreError(f"Redis refused to allocate a sequence number: {seq}")
        self._pending[obj.uid] = _Rec(_copy(obj), seq)

    def update(self, obj: StoredObject, expected_version: int) -> None:
        self._writing()
        self._fetch((obj.uid,))
        current = self._current(obj.uid)
        if current is None or current.obj.version != expected_version:
            raise ConflictError(f"object {obj.uid!r} was changed concurrently")
        self._pending[obj.uid] = _Rec(_copy(obj), current.seq)

    def delete(self, uid: str) -> None:
        self._writing()
        self._fetch((uid,))
        self._pending[uid] = None

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        snapshot = dict(self._pending)
        try:
            yield
        except BaseException:
            self._pending = snapshot
            raise

    def find(self, query: Query) -> list[str]:
        store = self.store
        found: dict[str, int] = {}
        if query.uids is not None:
            uids = list(dict.fromkeys(query.uids))
            # Records are read (one MGET) and filtered here; the label read also makes an empty list a real
            # round trip, which /health relies on to report Redis down.
            replies = self._fetch(uids, [("GET", store.k_label)]) if uids else self._roundtrip([("GET", store.k_label)])
            if replies:
                self._check_label(replies[-1])
            for uid in uids:
                rec = self._base.get(uid)
                if rec is not None and uid not in self._pending and _matches(rec.obj, query):
                    found[uid] = rec.seq
        else:
            keys = sorted(self._positive_keys(query)) or [store.index_key(b"all", "")]
            cmds: list[tuple[Any, ...]] = [("SINTER", *keys)]
            cmds.extend(("SINTER", *keys, store.index_key(b"state", s)) for s in dict.fromkeys(query.exclude_states))
            cmds.append(("GET", store.k_label))
            replies = self._roundtrip(cmds)
            self._check_label(replies[-1])
            for reply in replies[:-1]:
                if isinstance(reply, Exception):
                    raise StoreError(f"Redis refused a search: {reply}")
            excluded = set().union(*replies[1:-1]) if len(replies) > 2 else set()
            crypto = store.crypto
            for member in replies[0]:
                if member in excluded:
                    continue
                try:
                    seq, uid = crypto.open_member(member)
                except (InvalidTag, ValueError) as exc:
                    raise CorruptObjectError("a Redis index entry failed authentication: it was altered") from exc
                if uid not in self._pending:
                    found[uid] = seq
        for uid, rec in self._pending.items():  # read-your-own-writes
            if rec is not None and _matches(rec.obj, query):
                found[uid] = rec.seq
        return sorted(found, key=found.__getitem__)

    def _positive_keys(self, query: Query) -> set[bytes]:
        s = self.store
        keys = set()
        if query.owner is not None:
            keys.add(s.index_key(b"owner", query.owner))
        if query.object_type is not None:
            keys.add(s.index_key(b"type", query.object_type))
        if query.algorithm is not None:
            keys.add(s.index_key(b"alg", query.algorithm))
        if query.length is not None:
            keys.add(s.index_key(b"len", query.length))
        keys.update(s.index_key(b"tag", t) for t in query.tags)
        keys.update(s.index_key(b"name", n) for n in query.names)
        return keys

    # ---------------------------------------------------------------------------------------------- end

    def commit(self) -> None:
        """MULTI/EXEC of the buffered writes; ConflictError if a watched key changed since it was read."""
        if not self.writable:
            return
        store = self.store
        crypto = store.crypto
        cmds: list[tuple[Any, ...]] = [("MULTI",)]
        for uid, new in self._pending.items():
            old = self._base[uid]
            if old is None and new is None:
                continue
            if old is not None and new is not None and old == new:
                continue
            old_keys = store.index_keys(old.obj) if old else set()
            new_keys = store.index_keys(new.obj) if new else set()
            old_m = crypto.member(old) if old else b""
            new_m = crypto.member(new) if new else b""
            if old_m == new_m:
                old_keys, new_keys = old_keys - new_keys, new_keys - old_keys
            cmds.extend(("SREM", k, old_m) for k in sorted(old_keys))
            cmds.extend(("SADD", k, new_m) for k in sorted(new_keys))
            key = store.object_key(uid)
            cmds.append(("SET", key, store.seal_record(new)) if new else ("UNLINK", key))
        if len(cmds) == 1:
            return  # nothing to write: abort() (from release) drops the WATCHes
        cmds.append(("INCR", store.k_gen))
        cmds.append(("EXEC",))
        replies = self._roundtrip(cmds)
        self._watching = False  # EXEC ends the WATCH, whether it ran or not
        result = replies[-1]
        if result is None:
            raise ConflictError("an object read in this transaction was changed concurrently")
        if isinstance(result, Exception) or any(isinstance(r, Exception) for r in result):
            raise StoreError(f"Redis refused the transaction: {result}")
        self._pending.clear()

    def abort(self) -> None:
        self._pending.clear()

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._watching and not self._broken:
            try:
                conn.send_command("UNWATCH")
                conn.read_response()
            except (redis.RedisError, OSError):
                self._broken = True
        if self._broken:
            conn.disconnect()
        self.store.pool.release(conn)
