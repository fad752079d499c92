"""sqlite-enc: one SQLite file per user group, encrypted with a key that only the group's clients hold.

Cosmian KMS 4.x feature, kept wire-compatible: `POST /new_database` creates `<sqlite-path>/<group_id>.sqlite` and
returns the database secret, base64 of the JSON `{"group_id": <u128>, "key": "<64 hex digits>"}`, shown once and
never stored by the server. Every other request carries it in the `KmsDatabaseSecret` header; the server decodes
it, opens that group's file through kms.store.encrypted with that key, serves the request, and drops the keys
when the request ends. (The later 4.x form, a JSON array of the 48 bytes group id ‖ key, is read too.)

How a request finds its store: the one engine of the process holds a `SqliteEncStore`, whose `session()` serves
the store bound to the current request (a ContextVar set by `bind`, which the HTTP layer enters for each KMIP
request). So the engine, its operations and its retry loops are the same as for every other backend, and a
request without a bound store cannot reach any group's data. The engine keeps no decoded-object cache for this
store (`cacheable` is False): decoded keys must not outlive the request that could decrypt them.

What stays across requests, per process: the SQLAlchemy engine of each recently used group file (connections and
the file's public encryption parameters, no key), so a request does not pay for opening the file; at most
`capacity` idle groups are kept open.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import json
import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kms.store.base import ObjectStore, Session, StoreError, WrongSecretError
from kms.store.encrypted import (
    PARAMETER,
    DatabaseKeys,
    EncryptedStore,
    EncryptionParameters,
    UnknownDatabaseError,
    open_parameters,
)
from kms.store.sql import SqlStore

SECRET_HEADER = "KmsDatabaseSecret"
KEY_BYTES = 32
GROUP_ID_LIMIT = 1 << 128
_GROUP_FILE = re.compile(r"^\d+\.sqlite(-wal|-shm|-journal|\.writelock)?$")


class DatabaseSecretError(Exception):
    """A request's database secret is missing, unreadable, names no database, or is the wrong key.

    `status` is the HTTP status to answer with (401 without a usable credential, 403 for a wrong key); the
    message is Cosmian's where Cosmian had one, so scripts matching it keep working.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class GroupSecret:
    group_id: int
    key: bytes

    def encode(self) -> str:
        """The header value / the string /new_database returns."""
        text = json.dumps({"group_id": self.group_id, "key": self.key.hex()}, separators=(",", ":"))
        return base64.b64encode(text.encode()).decode()

    def __repr__(self) -> str:  # never print the key, even in a traceback
        return f"GroupSecret(group_id={self.group_id})"


def decode_secret(header: str | None) -> GroupSecret:
    """The group and key a `KmsDatabaseSecret` header names; DatabaseSecretError(401) if it cannot be read."""
    if header is None or not header.strip():
        raise DatabaseSecretError(401, "Missing KmsDatabaseSecret header in the query")
    text = header.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None,
                               validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DatabaseSecretError(401, f"KmsDatabaseSecret header cannot be decoded: {exc}") from None
    try:
        data = json.loads(raw)
        if isinstance(data, dict):
            group_id, key_hex = data["group_id"], data["key"]
            if not isinstance(key_hex, str):
                raise ValueError("key must be a string of hexadecimal digits")
            key = bytes.fromhex(key_hex)
        elif isinstance(data, list):  # later 4.x: the 48 bytes group_id (big endian) || key, as a JSON array
            if len(data) != 16 + KEY_BYTES or not all(isinstance(b, int) and 0 <= b < 256 for b in data):
                raise ValueError(f"expected {16 + KEY_BYTES} bytes")
            group_id, key = int.from_bytes(bytes(data[:16]), "big"), bytes(data[16:])
        else:
            raise ValueError("expected a JSON object with group_id and key")
        if isinstance(group_id, bool) or not isinstance(group_id, int) or not 0 <= group_id < GROUP_ID_LIMIT:
            raise ValueError("group_id must be an unsigned 128-bit integer")
        if len(key) != KEY_BYTES:
            raise ValueError(f"key must be {KEY_BYTES} bytes ({2 * KEY_BYTES} hexadecimal digits)")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise DatabaseSecretError(401, f"KmsDatabaseSecret header cannot be read: {exc}") from None
    return GroupSecret(group_id, key)


@dataclass(slots=True)
class _Group:
    store: SqlStore
    params: EncryptionParameters
    users: int = 0


class SqliteEncStore(ObjectStore):
    """The group stores of one directory, and the per-request binding the engine's sessions go through."""

    cacheable = False

    def __init__(self, directory: str | os.PathLike[str], *, clear: bool = False, capacity: int = 64) -> None:
        self.directory = Path(directory)
        self.capacity = capacity
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if clear:
                for path in self.directory.iterdir():
                    if _GROUP_FILE.match(path.name):
                        path.unlink()
        except OSError as exc:
            raise StoreError(f"cannot use the sqlite-enc directory {self.directory}: {exc.strerror or exc}") from None
        self._lock = threading.Lock()
        self._groups: OrderedDict[int, _Group] = OrderedDict()
        self._current: contextvars.ContextVar[EncryptedStore | None] = contextvars.ContextVar(
            "kms_sqlite_enc_store", default=None
        )

    def path(self, group_id: int) -> Path:
        return self.directory / f"{group_id}.sqlite"

    # ------------------------------------------------------------------------------------------- groups

    def new_database(self) -> GroupSecret:
        """Create a new group's file with a fresh random key; the secret is returned once and not kept."""
        for _ in range(16):
            group_id = secrets.randbits(128)
            path = self.path(group_id)
            try:
                # Claims the name atomically (SQLite takes an empty file for an empty database).
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise StoreError(f"cannot create a database in {self.directory}: {exc.strerror or exc}") from None
        else:  # pragma: no cover - 16 collisions of random 128-bit ids
            raise StoreError("could not find a free database group id")
        key = secrets.token_bytes(KEY_BYTES)
        store = SqlStore(f"sqlite:///{path}")
        try:
            params, _keys = open_parameters(store, key, create=True)
        except BaseException:
            store.close()
            self._remove_files(group_id)
            raise
        with self._lock:
            self._groups[group_id] = _Group(store, params)
        self._trim()
        return GroupSecret(group_id, key)

    def _remove_files(self, group_id: int) -> None:
        for path in self.directory.glob(f"{group_id}.sqlite*"):
            path.unlink(missing_ok=True)

    def _acquire(self, group_id: int) -> _Group:
        with self._lock:
            group = self._groups.get(group_id)
            if group is not None:
                group.users += 1
                self._groups.move_to_end(group_id)
                return group
        path = self.path(group_id)
        if not path.is_file():
            raise DatabaseSecretError(
                401, f"KmsDatabaseSecret names database group {group_id}, which does not exist on this server"
            )
        store = SqlStore(f"sqlite:///{path}")
        try:
            stored = store.get_parameter(PARAMETER)
            if stored is None:
                raise UnknownDatabaseError(f"database group {group_id} is not initialised")
            params = EncryptionParameters.from_json(stored)
        except UnknownDatabaseError as exc:
            store.close()
            raise DatabaseSecretError(401, f"KmsDatabaseSecret: {exc}") from None
        except BaseException:
            store.close()
            raise
        with self._lock:
            existing = self._groups.get(group_id)
            if existing is not None:  # another thread opened it meanwhile: use theirs
                store.close()
                group = existing
            else:
                group = self._groups[group_id] = _Group(store, params)
            group.users += 1
            self._groups.move_to_end(group_id)
            return group

    def _release(self, group: _Group) -> None:
        with self._lock:
            group.users -= 1
        self._trim()

    def _trim(self) -> None:
        """Close the least recently used idle groups beyond `capacity` (open files and connection pools)."""
        closing: list[SqlStore] = []
        with self._lock:
            excess = len(self._groups) - self.capacity
            for group_id in list(self._groups):
                if excess <= 0:
                    break
                if self._groups[group_id].users == 0:
                    closing.append(self._groups.pop(group_id).store)
                    excess -= 1
        for store in closing:
            store.close()

    @contextmanager
    def bind(self, secret: GroupSecret) -> Iterator[EncryptedStore]:
        """Serve the current request (thread and context) from the group `secret` names, with its keys.

        DatabaseSecretError(401) for an unknown group, (403) for a wrong key: checked before anything is read.
        The keys live in the EncryptedStore made here and go when the block ends.
        """
        group = self._acquire(secret.group_id)
        try:
            keys = DatabaseKeys(secret.key, group.params)
            try:
                keys.verify(group.params)
            except WrongSecretError:
                raise DatabaseSecretError(
                    403, f"KmsDatabaseSecret: wrong key for database group {secret.group_id}"
                ) from None
            store = EncryptedStore(group.store, keys, owns_inner=False)
            token = self._current.set(store)
            try:
                yield store
            finally:
                self._current.reset(token)
        finally:
            self._release(group)

    def _bound(self) -> EncryptedStore:
        store = self._current.get()
        if store is None:
            raise StoreError("sqlite-enc: no database selected for this request (KmsDatabaseSecret header)")
        return store

    # ------------------------------------------------------------------------------------- ObjectStore

    @contextmanager
    def session(self, write: bool) -> Iterator[Session]:
        with self._bound().session(write) as session:
            yield session

    def scrub(self) -> None:
        self._bound().scrub()

    def get_parameter(self, name: str) -> str | None:
        return self._bound().get_parameter(name)

    def put_parameter_once(self, name: str, value: str) -> str:
        return self._bound().put_parameter_once(name, value)

    def check(self) -> None:
        """Health without a group: the directory must be usable (each group file is checked when opened)."""
        if not self.directory.is_dir() or not os.access(self.directory, os.R_OK | os.W_OK | os.X_OK):
            raise StoreError(f"the sqlite-enc directory {self.directory} is not a writable directory")

    def close(self) -> None:
        with self._lock:
            groups = list(self._groups.values())
            self._groups.clear()
        for group in groups:
            group.store.close()
