"""The engine's view of a stored object, and its (de)serialisation for the store.

Objects are stored as binary TTLV (compact, exact, and what every codec already speaks). Decoding is cached per
(uid, version): versions are random tokens written on every update, so a cached entry can never be mistaken for
a different write, whichever process made it and whether or not a transaction rolled back.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections import OrderedDict

from kms.kmip import binary, schema
from kms.kmip.attributes import Attributes
from kms.kmip.enums import ObjectType, State
from kms.kmip.objects import OBJECT_CLASSES
from kms.store.base import StoredObject


@dataclasses.dataclass(slots=True)
class ManagedObject:
    uid: str
    object_type: ObjectType
    obj: object  # typed managed object (SymmetricKey, SecretData, ...)
    attributes: Attributes
    owner: str
    tags: set[str]  # user and system tags
    version: int = 0

    @property
    def state(self) -> State:
        return self.attributes.state or State.PreActive


def new_version() -> int:
    return secrets.randbits(62) + 1


def to_stored(mo: ManagedObject) -> StoredObject:
    a = mo.attributes
    return StoredObject(
        uid=mo.uid,
        object_type=int(mo.object_type),
        state=int(a.state or State.PreActive),
        owner=mo.owner,
        object_bytes=binary.encode(schema.encode(mo.obj)),
        attributes_bytes=binary.encode(schema.encode(a)),
        tags=frozenset(mo.tags),
        names=tuple(dict.fromkeys(n.name_value for n in a.name)),
        algorithm=int(a.cryptographic_algorithm) if a.cryptographic_algorithm is not None else None,
        length=a.cryptographic_length,
        version=mo.version,
    )


def from_stored(so: StoredObject) -> ManagedObject:
    object_type = ObjectType(so.object_type)
    obj = schema.decode(OBJECT_CLASSES[object_type], binary.decode(so.object_bytes))
    attributes = schema.decode(Attributes, binary.decode(so.attributes_bytes))
    return ManagedObject(
        uid=so.uid,
        object_type=object_type,
        obj=obj,
        attributes=attributes,
        owner=so.owner,
        tags=set(so.tags),
        version=so.version,
    )


class ObjectCache:
    """Bounded LRU of decoded objects keyed by uid and checked against the stored version.

    Entries are treated as immutable: operations that change an object work on a copy (see `copy_object`).
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, ManagedObject] = OrderedDict()

    def load(self, so: StoredObject) -> ManagedObject:
        with self._lock:
            hit = self._entries.get(so.uid)
            if hit is not None and hit.version == so.version:
                self._entries.move_to_end(so.uid)
                return hit
        mo = from_stored(so)
        if self.capacity:
            with self._lock:
                self._entries[so.uid] = mo
                self._entries.move_to_end(so.uid)
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)
        return mo

    def forget(self, uid: str) -> None:
        with self._lock:
            self._entries.pop(uid, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def copy_object(mo: ManagedObject) -> ManagedObject:
    """A deep-enough copy to modify: attributes and tags are fresh; the key object is re-decoded when changed."""
    attributes = schema.decode(Attributes, schema.encode(mo.attributes))
    return dataclasses.replace(mo, attributes=attributes, tags=set(mo.tags))
