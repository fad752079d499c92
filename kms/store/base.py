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
    @abc.abstractmethod
    def session(self, write: bool) -> AbstractContextManager[Session]:
        """A transaction; `write` lets backends take the write lock up front (SQLite BEGIN IMMEDIATE)."""

    @abc.abstractmethod
    def scrub(self) -> None:
        """Make sure deleted content (destroyed key material) no longer lingers in files (WAL, free pages)."""

    @abc.abstractmethod
    def get_parameter(self, name: str) -> str | None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def iter_all(self) -> Iterator[str]:  # pragma: no cover - optional helper
        with self.session(write=False) as s:
            yield from s.find(Query())
