"""The one storage interface every backend implements.

The store sees opaque serialised objects plus the few columns it must index (owner, type, state, algorithm,
length, names, tags); all KMIP semantics live in kms.core. Every call runs inside a `Session`, which is one
database transaction: a KMIP request (or a whole batch, for BatchErrorContinuationOption=Undo) commits or rolls
back as a unit.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager


class StoreError(Exception):
    """A backend failure (connection lost, disk full...). Mapped to a generic server error, never to a 500 page."""


class TransientStoreError(StoreError):
    """A failure that retrying the whole transaction may cure (lock contention, serialization conflict)."""


class ConflictError(TransientStoreError):
    """An optimistic-concurrency check failed: the object changed since it was read."""


class DuplicateError(StoreError):
    """An object with this unique identifier already exists."""


class CorruptObjectError(StoreError):
    """A stored row failed its integrity check (tampered, moved to another id, or written under another secret).

    Not transient: retrying reads the same bytes. The engine reports it with its message, which names the object,
    instead of the generic "store unavailable", because an operator must investigate it.
    """


class WrongSecretError(StoreError):
    """The configured database secret is not the one the database was initialised with."""


@dataclasses.dataclass(slots=True)
class StoredObject:
    uid: str
    object_type: int
    state: int
    owner: str
    object_bytes: bytes  # binary TTLV of the managed object
    attributes_bytes: bytes  # binary TTLV of its Attributes
    tags: frozenset[str] = frozenset()
    names: tuple[str, ...] = ()
    algorithm: int | None = None
    length: int | None = None
    version: int = 1


@dataclasses.dataclass(slots=True)
class Query:
    """Pre-filter for Locate and tag lookups; None means "any". Tags must all be present."""

    owner: str | None = None
    object_type: int | None = None
    algorithm: int | None = None
    length: int | None = None
    names: Sequence[str] = ()
    tags: Sequence[str] = ()
    exclude_states: Sequence[int] = ()
    uids: Sequence[str] | None = None


class ReadOnlySession(Exception):
    """A write was attempted in a read transaction: the caller re-runs the request in a write transaction.

    Most reads never write, so they run without the write lock; the few that do (first Get clears Fresh,
    usage-limited keys count their uses) are re-run once with it, instead of upgrading a read transaction,
    which SQLite refuses under concurrency.
    """


class Session(abc.ABC):
    """Operations within one transaction. `writable` is False in read transactions: insert/update/delete raise
    ReadOnlySession there."""

    writable: bool = True

    @abc.abstractmethod
    def get(self, uid: str) -> StoredObject | None: ...

    @abc.abstractmethod
    def insert(self, obj: StoredObject) -> None:
        """Raise DuplicateError if the uid exists."""

    @abc.abstractmethod
    def update(self, obj: StoredObject, expected_version: int) -> None:
        """Write obj (its version must be expected_version + 1); ConflictError if the row moved meanwhile."""

    @abc.abstractmethod
    def delete(self, uid: str) -> None: ...

    @abc.abstractmethod
    def find(self, query: Query) -> list[str]:
        """Unique identifiers matching the pre-filter, in creation order."""

    @abc.abstractmethod
    def load_many(self, uids: Sequence[str]) -> list[StoredObject]: ...

    @abc.abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: rolled back alone if the block raises (one batch item of several)."""


class ObjectStore(abc.ABC):
    # False for stores whose keys must not outlive a request (sqlite-enc): the engine then keeps no decoded objects.
    cacheable: bool = True

    @abc.abstractmethod
    def session(self, write: bool) -> AbstractContextManager[Session]:
        """A transaction; `write` lets backends take the write lock up front (SQLite BEGIN IMMEDIATE)."""

    @abc.abstractmethod
    def scrub(self) -> None:
        """Make sure deleted content (destroyed key material) no longer lingers in files (WAL, free pages)."""

    @abc.abstractmethod
    def get_parameter(self, name: str) -> str | None: ...

    def put_parameter_once(self, name: str, value: str) -> str:
        """Store `value` under `name` unless a value is already there; return the value stored (ours or the one
        that was there). Atomic, so several processes or nodes starting at once on an empty database agree on one
        value (the encryption salt and check value of kms.store.encrypted)."""
        raise StoreError(f"{type(self).__name__} cannot store database parameters")

    def check(self) -> None:
        """A cheap liveness probe for GET /health: raise StoreError when the database cannot be used."""
        with self.session(write=False) as session:
            session.find(Query(uids=[]))

    @abc.abstractmethod
    def close(self) -> None: ...

    def iter_all(self) -> Iterator[str]:  # pragma: no cover - optional helper
        with self.session(write=False) as s:
            yield from s.find(Query())
