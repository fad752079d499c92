"""One storage conformance suite, run on every backend of tests/store/conftest.py STORE_BACKENDS.

What the engine relies on: sessions are transactions (rollback on error, savepoints for batch items), read
sessions refuse writes, duplicates and stale versions are reported as such, find() honours every Query field
in creation order, values are stored exactly (large objects, case and trailing spaces in ids and tags), and a
second store on the same database (another node) sees what the first committed.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading

import pytest

from kms.store.base import (
    ConflictError,
    DuplicateError,
    ObjectStore,
    Query,
    ReadOnlySession,
    StoredObject,
    TransientStoreError,
)
from tests.store.conftest import StoreTarget

_ids = itertools.count()


def obj(uid: str | None = None, **kw: object) -> StoredObject:
    fields: dict = {
        "uid": uid or f"uid-{next(_ids)}-{os.urandom(4).hex()}",
        "object_type": 2,
        "state": 1,
        "owner": "alice",
        "object_bytes": os.urandom(48),
        "attributes_bytes": os.urandom(16),
    }
    fields.update(kw)
    return StoredObject(**fields)


def insert(store: ObjectStore, *objs: StoredObject) -> None:
    with store.session(write=True) as s:
        for o in objs:
            s.insert(o)


def get(store: ObjectStore, uid: str) -> StoredObject | None:
    with store.session(write=False) as s:
        return s.get(uid)


def find(store: ObjectStore, **query: object) -> list[str]:
    with store.session(write=False) as s:
        return s.find(Query(**query))  # type: ignore[arg-type]


class Boom(Exception):
    pass


# ------------------------------------------------------------------------------------------ basic operations


def test_insert_then_get_returns_every_field(store: ObjectStore) -> None:
    o = obj(
        tags=frozenset({"a", "b", "_kk"}),
        names=("first name", "second"),
        algorithm=3,
        length=256,
        version=7,
        state=2,
        owner="bob@example.com",
    )
    insert(store, o)
    assert get(store, o.uid) == o
    bare = obj(tags=frozenset(), names=(), algorithm=None, length=None)
    insert(store, bare)
    assert get(store, bare.uid) == bare
    assert get(store, "no-such-uid") is None


def test_duplicate_insert_raises_and_the_transaction_stays_usable(store: ObjectStore) -> None:
    first = obj()
    insert(store, first)
    other = obj()
    with store.session(write=True) as s:
        with pytest.raises(DuplicateError):
            s.insert(obj(first.uid))
        s.insert(other)  # a PostgreSQL transaction must not be left aborted by the duplicate
    assert get(store, first.uid) == first
    assert get(store, other.uid) == other


def test_update_checks_the_expected_version(store: ObjectStore) -> None:
    o = obj(tags=frozenset({"old"}), names=("old-name",))
    insert(store, o)
    changed = dataclasses.replace(o, state=3, version=2, tags=frozenset({"new"}), names=("new-name",), length=128)
    with store.session(write=True) as s:
        s.update(changed, expected_version=1)
    assert get(store, o.uid) == changed
    assert find(store, tags=["old"]) == [] and find(store, tags=["new"]) == [o.uid]
    assert find(store, names=["old-name"]) == [] and find(store, names=["new-name"]) == [o.uid]
    stale = dataclasses.replace(o, state=4, version=2)
    with pytest.raises(ConflictError), store.session(write=True) as s:
        s.update(stale, expected_version=1)
    with pytest.raises(ConflictError), store.session(write=True) as s:
        s.update(obj("never-inserted", version=2), expected_version=1)
    assert get(store, o.uid) == changed


def test_an_update_that_changes_nothing_still_counts_as_applied(store: ObjectStore) -> None:
    """MySQL reports changed rows unless FOUND_ROWS is set: an identical row would look like a conflict."""
    o = obj()
    insert(store, o)
    with store.session(write=True) as s:
        s.update(dataclasses.replace(o, version=1), expected_version=1)
    assert get(store, o.uid) == o


def test_delete_removes_the_object_and_its_index_entries(store: ObjectStore) -> None:
    o, keep = obj(tags=frozenset({"t"}), names=("n",)), obj(tags=frozenset({"t"}), names=("n",))
    insert(store, o, keep)
    with store.session(write=True) as s:
        s.delete(o.uid)
        s.delete("no-such-uid")
    assert get(store, o.uid) is None
    assert find(store, tags=["t"]) == [keep.uid] and find(store, names=["n"]) == [keep.uid]
    insert(store, obj(o.uid))  # the uid is free again
    assert get(store, o.uid) is not None


# ------------------------------------------------------------------------------------------------ find


def test_find_honours_every_query_field(store: ObjectStore) -> None:
    a = obj("a", owner="alice", object_type=2, algorithm=3, length=256, state=1, tags=frozenset({"x", "y"}),
            names=("na",))
    b = obj("b", owner="alice", object_type=2, algorithm=3, length=128, state=2, tags=frozenset({"x"}),
            names=("nb", "na"))
    c = obj("c", owner="alice", object_type=7, algorithm=None, length=None, state=1, tags=frozenset({"y"}))
    d = obj("d", owner="bob", object_type=2, algorithm=3, length=256, state=6, tags=frozenset({"x", "y"}),
            names=("na",))
    insert(store, a, b, c, d)
    assert find(store) == ["a", "b", "c", "d"]
    assert find(store, owner="alice") == ["a", "b", "c"]
    assert find(store, owner="carol") == []
    assert find(store, object_type=2) == ["a", "b", "d"]
    assert find(store, algorithm=3) == ["a", "b", "d"]
    assert find(store, length=256) == ["a", "d"]
    assert find(store, exclude_states=[2, 6]) == ["a", "c"]
    assert find(store, uids=["d", "a", "zz"]) == ["a", "d"]
    assert find(store, uids=[]) == []
    assert find(store, tags=["x"]) == ["a", "b", "d"]
    assert find(store, tags=["x", "y"]) == ["a", "d"]  # every tag must be present
    assert find(store, tags=["x", "x"]) == ["a", "b", "d"]
    assert find(store, tags=["x", "nope"]) == []
    assert find(store, names=["na"]) == ["a", "b", "d"]
    assert find(store, names=["na", "nb"]) == ["b"]  # every name must be present
    assert find(store, owner="alice", tags=["x"], names=["na"], exclude_states=[2]) == ["a"]
    assert find(store, owner="alice", object_type=2, algorithm=3, length=128, tags=["x"], uids=["b", "c"]) == ["b"]


def test_find_returns_creation_order_not_uid_order(store: ObjectStore) -> None:
    uids = [f"{os.urandom(6).hex()}" for _ in range(30)]
    for u in uids:
        insert(store, obj(u, tags=frozenset({"order"})))
    assert find(store, tags=["order"]) == uids
    with store.session(write=True) as s:
        s.delete(uids[-1])
    insert(store, obj("zz-last", tags=frozenset({"order"})))
    insert(store, obj("aa-after", tags=frozenset({"order"})))
    assert find(store, tags=["order"]) == [*uids[:-1], "zz-last", "aa-after"]


def test_load_many_keeps_the_order_given_and_skips_missing(store: ObjectStore) -> None:
    objs = [obj(f"lm-{i:04d}") for i in range(700)]  # more than one query's worth of ids
    insert(store, *objs)
    wanted = [o.uid for o in reversed(objs)] + ["missing"]
    with store.session(write=False) as s:
        got = s.load_many(wanted)
        assert s.load_many([]) == []
    assert [o.uid for o in got] == wanted[:-1]
    assert got[0] == objs[-1]


def test_values_are_stored_exactly(store: ObjectStore) -> None:
    """Case, trailing spaces, non-ASCII and long values survive and stay distinct (MySQL's collations would
    fold them)."""
    upper, lower, spaced = obj("Key-1"), obj("key-1"), obj("key-1 ")
    insert(store, upper, lower, spaced)
    assert [get(store, u.uid) for u in (upper, lower, spaced)] == [upper, lower, spaced]
    long_tag = "t" * 1000
    tagged = obj(
        tags=frozenset({"Tag", "tag", "tag ", "ünïcødé ✓", long_tag}), names=("Name", "näme", "x" * 1000),
        owner="O'Brien \"quoted\" ü",
    )
    insert(store, tagged)
    assert get(store, tagged.uid) == tagged
    for t in ("Tag", "tag", "tag ", "ünïcødé ✓", long_tag):
        assert find(store, tags=[t]) == [tagged.uid], t
    assert find(store, tags=["TAG"]) == [] and find(store, tags=["tag  "]) == []
    assert find(store, names=["näme"]) == [tagged.uid] and find(store, names=["name"]) == []
    assert find(store, owner='O\'Brien "quoted" ü') == [tagged.uid]
    assert find(store, owner="o'brien \"quoted\" u") == []


def test_large_objects_round_trip(store: ObjectStore) -> None:
    big = obj(object_bytes=os.urandom(5 * 1024 * 1024), attributes_bytes=os.urandom(300_000))
    insert(store, big)
    assert get(store, big.uid) == big
    with store.session(write=True) as s:
        s.update(dataclasses.replace(big, object_bytes=os.urandom(6 * 1024 * 1024), version=2), expected_version=1)
    assert len(get(store, big.uid).object_bytes) == 6 * 1024 * 1024  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------- transactions


def test_an_exception_rolls_the_whole_session_back(store: ObjectStore) -> None:
    kept = obj()
    insert(store, kept)
    lost = obj()
    with pytest.raises(Boom), store.session(write=True) as s:
        s.insert(lost)
        s.update(dataclasses.replace(kept, state=5, version=2), expected_version=1)
        s.delete(kept.uid)
        raise Boom
    assert get(store, lost.uid) is None
    assert get(store, kept.uid) == kept


def test_savepoint_rolls_back_one_item_only(store: ObjectStore) -> None:
    before, failed, after, dup = obj(), obj(), obj(), obj()
    with store.session(write=True) as s:
        s.insert(before)
        with s.savepoint():
            s.insert(dup)
        with pytest.raises(Boom), s.savepoint():
            s.insert(failed)
            s.update(dataclasses.replace(before, state=9, version=2), expected_version=1)
            raise Boom
        with pytest.raises(DuplicateError), s.savepoint():
            s.insert(obj(dup.uid))
        s.insert(after)
        assert s.get(failed.uid) is None and s.get(before.uid) == before
    assert get(store, before.uid) == before
    assert get(store, failed.uid) is None
    assert get(store, after.uid) == after and get(store, dup.uid) == dup


def test_read_sessions_refuse_writes(store: ObjectStore) -> None:
    o = obj()
    insert(store, o)
    with store.session(write=False) as s:
        assert s.writable is False
        with pytest.raises(ReadOnlySession):
            s.insert(obj())
        with pytest.raises(ReadOnlySession):
            s.update(dataclasses.replace(o, version=2), expected_version=1)
        with pytest.raises(ReadOnlySession):
            s.delete(o.uid)
        assert s.get(o.uid) == o
    assert find(store) == [o.uid]


def test_another_node_sees_a_commit_at_once(store_target: StoreTarget) -> None:
    """Locate after Create across nodes: a second store on the database finds what the first committed."""
    node_a, node_b = store_target.open(), store_target.open()
    with node_b.session(write=False) as s:
        assert s.find(Query(tags=["shared"])) == []  # node B's pooled connection has read before
    created = obj(tags=frozenset({"shared"}))
    insert(node_a, created)
    assert find(node_b, tags=["shared"]) == [created.uid]
    with node_b.session(write=True) as s:
        s.update(dataclasses.replace(created, state=3, version=2), expected_version=1)
    assert get(node_a, created.uid).state == 3  # type: ignore[union-attr]


def test_a_stale_write_from_another_node_conflicts(store_target: StoreTarget) -> None:
    node_a, node_b = store_target.open(), store_target.open()
    o = obj()
    insert(node_a, o)
    read_by_b = get(node_b, o.uid)
    assert read_by_b is not None
    with node_a.session(write=True) as s:
        s.update(dataclasses.replace(o, state=2, version=2), expected_version=1)
    with pytest.raises(ConflictError), node_b.session(write=True) as s:
        s.update(dataclasses.replace(read_by_b, state=3, version=2), expected_version=read_by_b.version)
    assert get(node_b, o.uid).state == 2  # type: ignore[union-attr]


def test_interleaved_writers_conflict_instead_of_losing_an_update(store_target: StoreTarget) -> None:
    """Node A updates a row and has not committed; node B has read the old version and then writes it: B must
    get ConflictError (whether its UPDATE waits for A's row lock or runs after A's commit), never overwrite."""
    if store_target.serial_writers:
        pytest.skip(f"{store_target.backend}: write transactions queue, they cannot interleave")
    node_a, node_b = store_target.open(), store_target.open()
    o = obj()
    insert(node_a, o)
    b_has_read = threading.Event()
    outcome: list[BaseException | str] = []

    def node_b_writes() -> None:
        try:
            with node_b.session(write=True) as s:
                seen = s.get(o.uid)
                b_has_read.set()
                assert seen == o  # A's change is not committed: B reads version 1
                s.update(dataclasses.replace(seen, state=3, version=2), expected_version=1)
            outcome.append("committed")
        except BaseException as exc:
            b_has_read.set()
            outcome.append(exc)

    a_outcome: BaseException | str = "committed"
    try:
        with node_a.session(write=True) as sa:
            sa.update(dataclasses.replace(o, state=2, version=2), expected_version=1)
            b = threading.Thread(target=node_b_writes)
            b.start()
            assert b_has_read.wait(30)
    except ConflictError as exc:
        if not store_target.optimistic_commit:
            raise
        a_outcome = exc
    b.join(60)
    assert len(outcome) == 1, outcome
    if store_target.optimistic_commit and a_outcome != "committed":
        # Checked at commit: B committed first, so A, which read the same version, conflicts.
        assert outcome[0] == "committed", outcome
        assert get(node_b, o.uid).state == 3  # type: ignore[union-attr]
        return
    assert isinstance(outcome[0], ConflictError), outcome
    assert get(node_b, o.uid).state == 2  # type: ignore[union-attr]


def test_concurrent_writers_serialise_through_conflicts_and_retries(store_target: StoreTarget) -> None:
    """8 threads on 2 nodes each add 1 to a counter 15 times (read, update with the version read, retry on a
    conflict or another transient error): no increment is lost and none is applied twice."""
    nodes = [store_target.open(), store_target.open()]
    counter = obj("counter", length=0)
    insert(nodes[0], counter)
    retries = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(store: ObjectStore) -> None:
        try:
            for _ in range(15):
                while True:
                    try:
                        with store.session(write=True) as s:
                            cur = s.get("counter")
                            assert cur is not None and cur.length is not None
                            s.update(
                                dataclasses.replace(cur, length=cur.length + 1, version=cur.version + 1),
                                expected_version=cur.version,
                            )
                        break
                    except TransientStoreError:  # ConflictError included
                        with lock:
                            retries[0] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(nodes[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    final = get(nodes[1], "counter")
    assert final is not None and final.length == 8 * 15 and final.version == 1 + 8 * 15


def test_concurrent_inserts_from_two_nodes_all_land_in_order_once(store_target: StoreTarget) -> None:
    nodes = [store_target.open(), store_target.open()]
    per_thread, threads_n = 25, 6
    done: list[list[str]] = [[] for _ in range(threads_n)]

    def work(i: int) -> None:
        for j in range(per_thread):
            o = obj(f"t{i}-{j}", tags=frozenset({"burst"}))
            insert(nodes[i % 2], o)
            done[i].append(o.uid)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    found = find(nodes[0], tags=["burst"])
    assert sorted(found) == sorted(u for d in done for u in d)
    for d in done:  # each thread's objects appear in the order it created them
        positions = [found.index(u) for u in d]
        assert positions == sorted(positions)


def test_clear_empties_the_database(store_target: StoreTarget) -> None:
    first = store_target.open()
    insert(first, obj(tags=frozenset({"gone"})))
    first.close()
    cleared = store_target.open(clear=True)
    assert find(cleared) == [] and find(cleared, tags=["gone"]) == []
    insert(cleared, obj("after-clear"))
    assert find(store_target.open()) == ["after-clear"]

