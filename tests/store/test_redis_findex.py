"""The redis-findex store on a real Redis: every Session method, optimistic conflicts, savepoints, the master
password check, label rotation, clearing, connection failures, and what Redis gets to see (nothing in clear).

Each test works under its own key prefix, so tests (and xdist workers) share one Redis. Most stores are opened with
a cheap Argon2id cost: the cost is a parameter of the store, tested once with the default.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import random
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
import redis

from kms.store.base import (
    ConflictError,
    CorruptObjectError,
    DuplicateError,
    Query,
    ReadOnlySession,
    StoredObject,
    StoreError,
    TransientStoreError,
)
from kms.store.redis_findex import (
    FORMAT_VERSION,
    KdfParams,
    RedisFindexStore,
    WrongPasswordError,
    derive_master_key,
)
from tests.support.redis_server import RedisServer, delete_prefix, redis_url_or_start, unique_prefix

CHEAP = KdfParams(iterations=1, lanes=1, memory_cost=1024)
PASSWORD = "correct horse battery staple"
LABEL = "label-one"

Opener = Callable[..., RedisFindexStore]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    yield from redis_url_or_start()


@pytest.fixture()
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture()
def prefix(redis_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    p = unique_prefix(request.node.name[:20])
    yield p
    delete_prefix(redis_url, p)


@pytest.fixture()
def opener(redis_url: str, prefix: str) -> Iterator[Opener]:
    """Opens stores on this test's prefix (closed at the end); keyword arguments override the defaults."""
    opened: list[RedisFindexStore] = []

    def open_store(**kw: object) -> RedisFindexStore:
        args: dict = {"url": redis_url, "master_password": PASSWORD, "label": LABEL, "prefix": prefix, "kdf": CHEAP}
        args.update(kw)
        store = RedisFindexStore(**args)
        opened.append(store)
        return store

    yield open_store
    for s in opened:
        s.close()


@pytest.fixture()
def store(opener: Opener) -> RedisFindexStore:
    return opener()


def obj(uid: str | None = None, **kw: object) -> StoredObject:
    fields: dict = {
        "uid": uid or f"uid-{secrets.token_hex(6)}",
        "object_type": 2,
        "state": 1,
        "owner": "alice",
        "object_bytes": b"\x42\x00\x01" + secrets.token_bytes(32),
        "attributes_bytes": b"\x42\x01" + secrets.token_bytes(20),
        "tags": frozenset({"t1"}),
        "names": ("n1",),
        "algorithm": 3,
        "length": 256,
        "version": 1,
    }
    fields.update(kw)
    return StoredObject(**fields)


def insert(store: RedisFindexStore, *objs: StoredObject) -> None:
    with store.session(write=True) as s:
        for o in objs:
            s.insert(o)


def find(store: RedisFindexStore, **kw: object) -> list[str]:
    with store.session(write=False) as s:
        return s.find(Query(**kw))


def get(store: RedisFindexStore, uid: str) -> StoredObject | None:
    with store.session(write=False) as s:
        return s.get(uid)


def keys_of(raw: redis.Redis, prefix: str, kind: str = "") -> set[bytes]:
    return set(raw.scan_iter(match=prefix.replace("*", "\\*") + kind + "*", count=1000))


# ------------------------------------------------------------------------------------------------ session methods


def test_insert_then_get_returns_every_field(store: RedisFindexStore) -> None:
    o = obj(
        owner="ünïcode owner",
        tags=frozenset({"é-tag", "_kk", "spaces in tag"}),
        names=("first", "second ✓"),
        object_bytes=secrets.token_bytes(5000),
        attributes_bytes=b"",
        algorithm=None,
        length=None,
        version=123456789012,
        state=2,
        object_type=7,
    )
    insert(store, o)
    got = get(store, o.uid)
    assert got == o
    assert get(store, "no-such-uid") is None


def test_get_returns_copies(store: RedisFindexStore) -> None:
    o = obj()
    with store.session(write=True) as s:
        s.insert(o)
        first = s.get(o.uid)
        assert first is not None and first is not o
        first.owner = "mallory"
        second = s.get(o.uid)
        assert second is not None and second.owner == "alice"


def test_load_many_keeps_order_and_skips_missing(store: RedisFindexStore) -> None:
    a, b, c = obj(), obj(), obj()
    insert(store, a, b, c)
    with store.session(write=False) as s:
        got = s.load_many([c.uid, "missing", a.uid, b.uid, a.uid])
    assert [o.uid for o in got] == [c.uid, a.uid, b.uid, a.uid]
    with store.session(write=False) as s:
        assert s.load_many([]) == []


def test_duplicate_insert_is_refused(store: RedisFindexStore) -> None:
    o = obj()
    insert(store, o)
    with pytest.raises(DuplicateError), store.session(write=True) as s:
        s.insert(obj(o.uid))
    with pytest.raises(DuplicateError), store.session(write=True) as s:
        fresh = obj()
        s.insert(fresh)
        s.insert(obj(fresh.uid))
    assert get(store, o.uid) == o


def test_update_checks_the_version(store: RedisFindexStore) -> None:
    o = obj(tags=frozenset({"old"}))
    insert(store, o)
    changed = dataclasses.replace(o, version=2, state=2, tags=frozenset({"new"}), names=("renamed",))
    with store.session(write=True) as s:
        s.update(changed, expected_version=1)
    assert get(store, o.uid) == changed
    with pytest.raises(ConflictError), store.session(write=True) as s:
        s.update(dataclasses.replace(changed, version=3), expected_version=1)  # stale version
    with pytest.raises(ConflictError), store.session(write=True) as s:
        s.update(obj("never-stored"), expected_version=1)
    assert get(store, o.uid) == changed
    assert find(store, tags=["old"]) == []
    assert find(store, tags=["new"]) == [o.uid]
    assert find(store, names=["n1"]) == []
    assert find(store, names=["renamed"]) == [o.uid]


def test_delete_removes_the_object_and_its_index_entries(
    store: RedisFindexStore, raw: redis.Redis, prefix: str
) -> None:
    a, b = obj(tags=frozenset({"x", "y"})), obj(tags=frozenset({"x"}))
    insert(store, a, b)
    with store.session(write=True) as s:
        s.delete(a.uid)
        s.delete("never-existed")  # deleting nothing is not an error
    assert get(store, a.uid) is None
    assert find(store, tags=["x"]) == [b.uid]
    assert find(store, tags=["y"]) == []
    with store.session(write=True) as s:
        s.delete(b.uid)
    # No index set keeps a member of a deleted object (Redis drops empty sets).
    assert keys_of(raw, prefix, "i:") == set()
    assert keys_of(raw, prefix, "o:") == set()


def test_find_filters(store: RedisFindexStore) -> None:
    a = obj(owner="alice", object_type=2, algorithm=3, length=256, tags=frozenset({"a", "common"}), names=("na",))
    b = obj(owner="alice", object_type=4, algorithm=4, length=2048, tags=frozenset({"b", "common"}), names=("nb", "x"))
    c = obj(owner="bob", object_type=2, algorithm=3, length=128, tags=frozenset({"common"}), names=("x",), state=5)
    d = obj(owner="alice", object_type=2, algorithm=None, length=None, tags=frozenset(), names=(), state=2)
    insert(store, a, b, c, d)
    assert find(store) == [a.uid, b.uid, c.uid, d.uid]
    assert find(store, owner="alice") == [a.uid, b.uid, d.uid]
    assert find(store, owner="nobody") == []
    assert find(store, object_type=2) == [a.uid, c.uid, d.uid]
    assert find(store, algorithm=3) == [a.uid, c.uid]
    assert find(store, length=2048) == [b.uid]
    assert find(store, tags=["common"]) == [a.uid, b.uid, c.uid]
    assert find(store, tags=["common", "a"]) == [a.uid]
    assert find(store, tags=["a", "b"]) == []
    assert find(store, names=["x"]) == [b.uid, c.uid]
    assert find(store, names=["x", "nb"]) == [b.uid]
    assert find(store, exclude_states=[5]) == [a.uid, b.uid, d.uid]
    assert find(store, exclude_states=[5, 1]) == [d.uid]
    assert find(store, tags=["common"], exclude_states=[1]) == [c.uid]
    assert find(store, uids=[d.uid, "missing", a.uid]) == [a.uid, d.uid]
    assert find(store, uids=[d.uid, c.uid], exclude_states=[5]) == [d.uid]
    assert find(store, uids=[a.uid, b.uid], tags=["b"]) == [b.uid]
    assert find(store, uids=[]) == []
    assert find(store, owner="alice", object_type=2, algorithm=3, length=256, names=["na"], tags=["a"]) == [a.uid]


def test_find_matches_a_brute_force_evaluation(store: RedisFindexStore) -> None:
    """Random objects and random queries: find() agrees with evaluating each query on every object."""
    rng = random.Random(5)
    objects = [
        obj(
            owner=rng.choice(["alice", "bob"]),
            object_type=rng.choice([2, 3, 4]),
            state=rng.randint(1, 6),
            algorithm=rng.choice([None, 3, 4]),
            length=rng.choice([None, 128, 256]),
            tags=frozenset(rng.sample(["t1", "t2", "t3", "t4"], rng.randint(0, 3))),
            names=tuple(rng.sample(["n1", "n2", "n3"], rng.randint(0, 2))),
        )
        for _ in range(60)
    ]
    for i in range(0, 60, 7):
        insert(store, *objects[i : i + 7])
    for _ in range(150):
        q = Query(
            owner=rng.choice([None, "alice", "bob"]),
            object_type=rng.choice([None, 2, 3, 4]),
            algorithm=rng.choice([None, 3, 4]),
            length=rng.choice([None, 128, 256]),
            tags=rng.sample(["t1", "t2", "t3", "t4"], rng.randint(0, 2)),
            names=rng.sample(["n1", "n2", "n3"], rng.randint(0, 1)),
            exclude_states=rng.sample(range(1, 7), rng.randint(0, 3)),
            uids=rng.choice([None, [o.uid for o in rng.sample(objects, 10)]]),
        )
        expected = [o.uid for o in objects if _brute(o, q)]
        with store.session(write=False) as s:
            assert s.find(q) == expected, q


def _brute(o: StoredObject, q: Query) -> bool:
    return (
        (q.owner is None or o.owner == q.owner)
        and (q.object_type is None or o.object_type == q.object_type)
        and (q.algorithm is None or o.algorithm == q.algorithm)
        and (q.length is None or o.length == q.length)
        and set(q.tags) <= o.tags
        and set(q.names) <= set(o.names)
        and o.state not in q.exclude_states
        and (q.uids is None or o.uid in q.uids)
    )


def test_creation_order_survives_updates_and_reinsertion(store: RedisFindexStore) -> None:
    objs = [obj() for _ in range(5)]
    for o in objs:
        insert(store, o)
    with store.session(write=True) as s:
        s.update(dataclasses.replace(objs[0], version=2, state=3), expected_version=1)
    assert find(store, owner="alice") == [o.uid for o in objs]
    # Deleting and inserting again (Import with ReplaceExisting) makes it the newest.
    with store.session(write=True) as s:
        s.delete(objs[1].uid)
        s.insert(dataclasses.replace(objs[1], version=9))
    assert find(store, owner="alice") == [objs[0].uid, *(o.uid for o in objs[2:]), objs[1].uid]
    assert get(store, objs[1].uid) == dataclasses.replace(objs[1], version=9)


def test_reads_see_the_session_own_writes(store: RedisFindexStore) -> None:
    old = obj(tags=frozenset({"keep"}))
    gone = obj(tags=frozenset({"keep"}))
    insert(store, old, gone)
    new = obj(tags=frozenset({"keep", "fresh"}))
    with store.session(write=True) as s:
        s.insert(new)
        s.delete(gone.uid)
        s.update(dataclasses.replace(old, version=2, tags=frozenset({"moved"})), expected_version=1)
        assert s.get(new.uid) == new
        assert s.get(gone.uid) is None
        assert s.find(Query(tags=["keep"])) == [new.uid]
        assert s.find(Query(tags=["moved"])) == [old.uid]
        assert s.find(Query(uids=[gone.uid, new.uid, old.uid])) == [old.uid, new.uid]
        assert [o.uid for o in s.load_many([gone.uid, new.uid])] == [new.uid]
        # Nothing is visible outside the session before it commits.
        assert get(store, new.uid) is None
        assert find(store, tags=["keep"]) == [old.uid, gone.uid]
    assert find(store, tags=["keep"]) == [new.uid]
    assert get(store, gone.uid) is None


def test_a_failed_session_writes_nothing(store: RedisFindexStore, raw: redis.Redis, prefix: str) -> None:
    before = keys_of(raw, prefix, "i:") | keys_of(raw, prefix, "o:")
    o = obj()
    with pytest.raises(RuntimeError), store.session(write=True) as s:
        s.insert(o)
        raise RuntimeError("the request failed")
    assert get(store, o.uid) is None
    assert keys_of(raw, prefix, "i:") | keys_of(raw, prefix, "o:") == before


def test_savepoint_rolls_back_only_its_block(store: RedisFindexStore) -> None:
    base = obj()
    insert(store, base)
    kept, undone = obj(), obj()
    with store.session(write=True) as s:
        with s.savepoint():
            s.insert(kept)
        with pytest.raises(RuntimeError), s.savepoint():
            s.insert(undone)
            s.update(dataclasses.replace(base, version=2, state=4), expected_version=1)
            s.delete(kept.uid)
            raise RuntimeError("batch item failed")
        assert s.get(undone.uid) is None
        assert s.get(kept.uid) == kept
        assert s.get(base.uid) == base
        with s.savepoint():  # nested: the inner failure keeps the outer block's work
            s.update(dataclasses.replace(base, version=3), expected_version=1)
            with pytest.raises(RuntimeError), s.savepoint():
                s.delete(base.uid)
                raise RuntimeError("inner")
            assert s.get(base.uid) is not None
    assert get(store, undone.uid) is None
    assert get(store, kept.uid) == kept
    assert get(store, base.uid) == dataclasses.replace(base, version=3)


def test_read_sessions_refuse_writes(store: RedisFindexStore) -> None:
    o = obj()
    insert(store, o)
    with store.session(write=False) as s:
        assert not s.writable
        with pytest.raises(ReadOnlySession):
            s.insert(obj())
        with pytest.raises(ReadOnlySession):
            s.update(dataclasses.replace(o, version=2), expected_version=1)
        with pytest.raises(ReadOnlySession):
            s.delete(o.uid)
    assert get(store, o.uid) == o


def test_parameters(store: RedisFindexStore, opener: Opener) -> None:
    assert store.get_parameter("db_version") == str(FORMAT_VERSION)
    assert store.get_parameter("salt") is None
    assert store.put_parameter_once("salt", "first") == "first"
    assert opener().put_parameter_once("salt", "second") == "first"
    assert store.get_parameter("salt") == "first"


def test_empty_uid_query_still_reaches_redis(prefix: str) -> None:
    """GET /health runs find(Query(uids=[])): it must fail when Redis is gone, not answer [] from memory."""
    server = RedisServer().start()
    try:
        store = RedisFindexStore(server.url, PASSWORD, LABEL, prefix=prefix, kdf=CHEAP)
        assert find(store, uids=[]) == []
        server.stop()
        with pytest.raises(TransientStoreError):
            find(store, uids=[])
        store.close()
    finally:
        server.close()


# ------------------------------------------------------------------------------------------------ concurrency


def test_concurrent_updates_conflict(store: RedisFindexStore) -> None:
    o = obj()
    insert(store, o)
    with ExitStack() as stack:
        first = stack.enter_context(store.session(write=True))
        second_cm = store.session(write=True)
        second = second_cm.__enter__()
        assert first.get(o.uid) == o
        assert second.get(o.uid) == o
        second.update(dataclasses.replace(o, version=2, state=2), expected_version=1)
        second_cm.__exit__(None, None, None)  # commits
        first.update(dataclasses.replace(o, version=3, state=3), expected_version=1)
        with pytest.raises(ConflictError):
            stack.close()  # commit of the first session: its read is stale
    assert get(store, o.uid) == dataclasses.replace(o, version=2, state=2)


def test_concurrent_inserts_of_one_uid(store: RedisFindexStore) -> None:
    uid = "same-uid"
    first_cm, second_cm = store.session(write=True), store.session(write=True)
    first, second = first_cm.__enter__(), second_cm.__enter__()
    first.insert(obj(uid, owner="first"))
    second.insert(obj(uid, owner="second"))
    first_cm.__exit__(None, None, None)
    with pytest.raises(ConflictError):
        second_cm.__exit__(None, None, None)
    assert get(store, uid).owner == "first"  # type: ignore[union-attr]
    # The retry sees the object: a DuplicateError, as the engine expects.
    with pytest.raises(DuplicateError), store.session(write=True) as s:
        s.insert(obj(uid, owner="second"))


def test_deleted_under_a_reader_conflicts(store: RedisFindexStore) -> None:
    o = obj()
    insert(store, o)
    cm = store.session(write=True)
    s = cm.__enter__()
    assert s.get(o.uid) is not None
    with store.session(write=True) as other:
        other.delete(o.uid)
    s.insert(obj())  # something to commit
    with pytest.raises(ConflictError):
        cm.__exit__(None, None, None)


def test_a_write_session_that_wrote_nothing_leaves_no_watch_behind(store: RedisFindexStore, raw: redis.Redis) -> None:
    """The pooled connection goes back clean: a later transaction on it is not aborted by an old WATCH."""
    o, p = obj(), obj()
    insert(store, o, p)
    with store.session(write=True) as s:
        s.get(o.uid)  # watched, nothing written
    key = store.object_key(o.uid)
    raw.set(key, raw.get(key))  # type: ignore[arg-type]  # touch o from another client
    with store.session(write=True) as s:  # the pool hands out the same connection again (LIFO)
        s.update(dataclasses.replace(p, version=2), expected_version=1)
    assert get(store, p.uid).version == 2  # type: ignore[union-attr]


def test_no_lost_updates_under_contention(store: RedisFindexStore) -> None:
    """Threads increment one counter with read-modify-write transactions, retrying on ConflictError as the
    engine does: every increment lands exactly once."""
    o = obj(attributes_bytes=b"0")
    insert(store, o)
    threads, per_thread = 8, 25
    conflicts = [0] * threads
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(per_thread):
                while True:
                    try:
                        with store.session(write=True) as s:
                            cur = s.get(o.uid)
                            assert cur is not None
                            n = int(cur.attributes_bytes)
                            s.update(
                                dataclasses.replace(cur, attributes_bytes=str(n + 1).encode(), version=cur.version + 1),
                                expected_version=cur.version,
                            )
                        break
                    except ConflictError:
                        conflicts[i] += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors
    final = get(store, o.uid)
    assert final is not None
    assert int(final.attributes_bytes) == threads * per_thread
    assert final.version == 1 + threads * per_thread


# ------------------------------------------------------------------------------------------------ keys and start-up


def test_wrong_password_is_refused_at_start(opener: Opener) -> None:
    o = obj()
    insert(opener(), o)
    with pytest.raises(WrongPasswordError, match="wrong --redis-master-password"):
        opener(master_password="not the password")
    # The right password opens it, whatever Argon2 cost is asked for now: the store keeps the one it was made with.
    assert get(opener(kdf=KdfParams(iterations=2, lanes=2, memory_cost=2048)), o.uid) == o


def test_default_argon2id_cost(opener: Opener, raw: redis.Redis, prefix: str) -> None:
    import json

    store = opener(kdf=None)
    meta = json.loads(raw.get(prefix + "meta"))  # type: ignore[arg-type]
    assert meta["kdf"] == {
        "algorithm": "argon2id",
        "salt": meta["kdf"]["salt"],
        "iterations": 3,
        "lanes": 4,
        "memory_cost": 65536,
    }
    assert len(base64.urlsafe_b64decode(meta["kdf"]["salt"] + "==")) == 16
    o = obj()
    insert(store, o)
    assert get(opener(kdf=None), o.uid) == o


def test_master_key_is_derived_once_per_salt() -> None:
    salt = os.urandom(16)
    k1 = derive_master_key("pw", salt, CHEAP)
    assert derive_master_key("pw", salt, CHEAP) is k1  # memoised: workers forked after the parent reuse it
    assert derive_master_key("pw2", salt, CHEAP) != k1
    assert derive_master_key("pw", os.urandom(16), CHEAP) != k1


def test_two_stores_with_one_password_have_independent_keys(redis_url: str, opener: Opener) -> None:
    a = opener()
    other_prefix = unique_prefix("other")
    try:
        b = RedisFindexStore(redis_url, PASSWORD, LABEL, prefix=other_prefix, kdf=CHEAP)
        o = obj()
        insert(a, o)
        # A value copied from one store into the other does not open there (different random salts).
        b.client.set(b.object_key(o.uid), a.client.get(a.object_key(o.uid)))  # type: ignore[arg-type]
        with pytest.raises(StoreError, match="failed authentication"):
            get(b, o.uid)
        b.close()
    finally:
        delete_prefix(redis_url, other_prefix)


def test_newer_format_is_refused(opener: Opener, raw: redis.Redis, prefix: str) -> None:
    import json

    opener()
    meta = json.loads(raw.get(prefix + "meta"))  # type: ignore[arg-type]
    meta["format"] = FORMAT_VERSION + 1
    raw.set(prefix + "meta", json.dumps(meta))
    with pytest.raises(StoreError, match="newer"):
        opener()


def test_values_swapped_between_keys_fail_authentication(store: RedisFindexStore, raw: redis.Redis) -> None:
    a, b = obj(), obj()
    insert(store, a, b)
    ka, kb = store.object_key(a.uid), store.object_key(b.uid)
    va, vb = raw.get(ka), raw.get(kb)
    raw.set(ka, vb)  # type: ignore[arg-type]
    raw.set(kb, va)  # type: ignore[arg-type]
    with pytest.raises(CorruptObjectError, match="failed authentication"):
        get(store, a.uid)
    raw.set(ka, va[:-1] + bytes([va[-1] ^ 1]))  # type: ignore[index]
    with pytest.raises(CorruptObjectError, match="failed authentication"):
        get(store, a.uid)
    # An index entry of another store (or a forged one) does not decrypt either.
    raw.sadd(store.index_key(b"tag", "t1"), os.urandom(48))
    with pytest.raises(CorruptObjectError, match="index entry"):
        find(store, tags=["t1"])


def test_unreachable_redis_is_a_clear_start_error(prefix: str) -> None:
    from tests.support.server import free_port

    with pytest.raises(StoreError, match="cannot reach Redis"):
        RedisFindexStore(f"redis://127.0.0.1:{free_port()}/0", PASSWORD, LABEL, prefix=prefix, kdf=CHEAP)


def test_connection_loss_is_transient_and_recovers(prefix: str) -> None:
    server = RedisServer(persist=True).start()
    try:
        store = RedisFindexStore(server.url, PASSWORD, LABEL, prefix=prefix, kdf=CHEAP)
        o = obj()
        insert(store, o)
        server.stop()  # saves its dataset on the way down
        with pytest.raises(TransientStoreError):
            get(store, o.uid)
        with pytest.raises(TransientStoreError), store.session(write=True) as s:
            s.insert(obj())
        server.start()  # same port, same data: the pool reconnects by itself
        assert get(store, o.uid) == o
        p = obj()
        insert(store, p)
        assert find(store) == [o.uid, p.uid]
        store.close()
    finally:
        server.close()


def test_clear_database_removes_only_this_prefix(redis_url: str, opener: Opener, raw: redis.Redis, prefix: str) -> None:
    o = obj()
    insert(opener(), o)
    neighbour = prefix[:-1] + "x:"  # shares the beginning of the name: must survive
    raw.set(neighbour + "data", b"keep")
    try:
        cleared = opener(clear=True)
        assert get(cleared, o.uid) is None
        assert find(cleared) == []
        assert raw.get(neighbour + "data") == b"keep"
        # After a clear, any password makes a new store.
        assert get(opener(clear=True, master_password="another"), o.uid) is None
    finally:
        raw.delete(neighbour + "data")


def test_prefix_from_the_url(redis_url: str, prefix: str, raw: redis.Redis) -> None:
    sep = "&" if "?" in redis_url else "?"
    store = RedisFindexStore(f"{redis_url}{sep}key_prefix={prefix}", PASSWORD, LABEL, kdf=CHEAP)
    insert(store, obj())
    assert raw.exists(prefix + "meta")
    assert len(keys_of(raw, prefix, "o:")) == 1
    store.close()


# ------------------------------------------------------------------------------------------------ label rotation


def test_label_rotation_rekeys_the_index(opener: Opener, raw: redis.Redis, prefix: str) -> None:
    old_store = opener(label="label-one")
    objs = [obj(tags=frozenset({"k", f"t{i}"}), names=(f"name{i}",), owner=f"o{i % 2}") for i in range(12)]
    insert(old_store, *objs)
    old_index = keys_of(raw, prefix, "i:")
    objects_before = {k: raw.get(k) for k in keys_of(raw, prefix, "o:")}
    label_fp = raw.get(prefix + "label")

    new_store = opener(label="label-two")
    new_index = keys_of(raw, prefix, "i:")
    assert new_index and not (new_index & old_index)  # every old index key is gone
    assert len(new_index) == len(old_index)
    assert raw.get(prefix + "label") != label_fp
    assert {k: raw.get(k) for k in keys_of(raw, prefix, "o:")} == objects_before  # records untouched
    assert find(new_store, tags=["k"]) == [o.uid for o in objs]
    assert find(new_store, owner="o1", names=["name3"]) == [objs[3].uid]
    assert find(new_store, tags=["t5"], exclude_states=[1]) == []
    # A node still on the old label refuses to search or write, rather than use an index nobody maintains.
    with pytest.raises(StoreError, match="re-keyed"):
        find(old_store, tags=["k"])
    with pytest.raises(StoreError, match="re-keyed"), old_store.session(write=True) as s:
        s.insert(obj())
    # Writes under the new label are indexed under it; rotating back re-keys again.
    extra = obj(tags=frozenset({"k"}))
    insert(new_store, extra)
    back = opener(label="label-one")
    assert find(back, tags=["k"]) == [*(o.uid for o in objs), extra.uid]
    final_index = keys_of(raw, prefix, "i:")
    assert old_index <= final_index and not (final_index & new_index)


def test_label_rotation_is_idempotent_between_nodes(opener: Opener, raw: redis.Redis, prefix: str) -> None:
    insert(opener(label="one"), obj(tags=frozenset({"k"})))
    a = opener(label="two")
    index = keys_of(raw, prefix, "i:")
    b = opener(label="two")  # a second node on the new label: nothing left to do
    assert keys_of(raw, prefix, "i:") == index
    assert find(a, tags=["k"]) == find(b, tags=["k"])
    assert len(find(b, tags=["k"])) == 1


# ------------------------------------------------------------------------------------------------ what Redis sees


def _encodings(needle: bytes) -> set[bytes]:
    """The needle raw, in hex (both cases) and in base64 (standard and URL-safe) at every alignment."""
    out = {needle, needle.hex().encode(), needle.hex().upper().encode()}
    for offset in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            text = enc(b"\x00" * offset + needle)
            start = -(-offset * 8 // 6)  # first character entirely made of needle bits
            end = (offset + len(needle)) * 8 // 6  # one past the last one
            core = text[start:end]
            if len(core) >= 6:
                out.add(core)
    return out


def _dump(raw: redis.Redis) -> list[bytes]:
    """Every key of the database and every value in it, whatever its type."""
    out: list[bytes] = []
    for key in raw.scan_iter(count=1000):
        out.append(key)
        kind = raw.type(key)
        if kind == b"string":
            out.append(raw.get(key) or b"")
        elif kind == b"set":
            out.extend(raw.smembers(key))
        elif kind == b"hash":
            for f, v in raw.hgetall(key).items():
                out.extend((f, v))
        elif kind == b"zset":
            out.extend(m for m, _ in raw.zrange(key, 0, -1, withscores=True))
        elif kind == b"list":
            out.extend(raw.lrange(key, 0, -1))
    return out


def test_redis_never_sees_secrets_in_clear(opener: Opener, raw: redis.Redis, prefix: str) -> None:
    secret_word = secrets.token_hex(8)
    owner = f"owner-{secret_word}-ö"
    tag = f"tag-{secrets.token_hex(8)}"
    name = f"name-{secrets.token_hex(8)}"
    uid = f"uid-{secrets.token_hex(8)}"
    label = f"label-{secrets.token_hex(8)}"
    password = f"pw-{secrets.token_hex(8)}"
    key_material = secrets.token_bytes(32)
    attribute_value = f"attr-{secrets.token_hex(8)}".encode()
    store = opener(label=label, master_password=password)
    o = obj(
        uid,
        owner=owner,
        tags=frozenset({tag, "_kk"}),
        names=(name,),
        object_bytes=b"\x42\x00\x79" + key_material,
        attributes_bytes=b"\x42\x00\x0a" + attribute_value,
    )
    second = obj(owner=owner, tags=frozenset({tag}), names=(name,))
    with store.session(write=True) as s:
        s.insert(o)
        s.insert(second)
    store.put_parameter_once("p", attribute_value.decode())
    rotated = opener(label=label + "-2", master_password=password)  # rotation rewrites the index: check that too
    assert find(rotated, tags=[tag], owner=owner, names=[name]) == [uid, second.uid]

    needles = {
        "owner": owner.encode(),
        "owner-part": secret_word.encode(),
        "tag": tag.encode(),
        "name": name.encode(),
        "uid": uid.encode(),
        "label": label.encode(),
        "password": password.encode(),
        "key": key_material,
        "attribute": attribute_value,
    }
    dump = _dump(raw)
    ours = [k for k in dump if k.startswith(prefix.encode())]
    assert len(ours) >= 10  # meta, label, seq, gen, params, two objects, index sets
    for what, needle in needles.items():
        for form in _encodings(needle):
            for item in dump:
                assert form not in item, f"the {what} appears in Redis ({form!r} in {item[:80]!r})"
    # The search index is still usable: nothing was lost by hiding it.
    assert get(rotated, uid) == o


def test_the_leak_detector_finds_encoded_needles() -> None:
    """The scan above would notice a needle hidden in hex or base64 inside a longer value, at any offset."""
    needle = secrets.token_bytes(16)
    forms = _encodings(needle)
    for offset in range(6):
        blob = os.urandom(offset) + needle + os.urandom(7)
        for encoded in (blob, blob.hex().encode(), blob.hex().upper().encode()):
            assert any(f in encoded for f in forms)
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            assert any(f in enc(blob) for f in forms), offset


def test_a_database_secret_wraps_the_store_once_more(redis_url: str, prefix: str, raw: redis.Redis) -> None:
    """With --database-secret the factory puts kms.store.encrypted around this store: it works through it, and
    a wrong secret is refused at start."""
    from kms.config import ServerConfig
    from kms.store.base import WrongSecretError
    from kms.store.factory import open_store

    url = f"{redis_url}{'&' if '?' in redis_url else '?'}key_prefix={prefix}"
    config = ServerConfig(
        database_type="redis-findex",
        database_url=url,
        redis_master_password=PASSWORD,
        redis_findex_label=LABEL,
        database_secret="b" * 64,
    )
    store = open_store(config)
    o = obj(tags=frozenset({"wrapped"}))
    try:
        insert(store, o)  # type: ignore[arg-type]
        assert find(store, tags=["wrapped"]) == [o.uid]  # type: ignore[arg-type]
        assert get(store, o.uid) == o  # type: ignore[arg-type]
    finally:
        store.close()
    with pytest.raises(WrongSecretError):
        open_store(dataclasses.replace(config, database_secret="c" * 64))
    with pytest.raises(WrongSecretError):
        open_store(dataclasses.replace(config, database_secret=None))
