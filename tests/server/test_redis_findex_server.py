"""kms-server on redis-findex, end to end: KMIP over HTTP on two nodes sharing one Redis, the key material never in
Redis, a wrong master password refused at start, and a label rotation on restart that keeps Locate working.

The generic server suites (tests/server, tests/conformance) also run on redis-findex through the kms_server
fixture; this file covers what is specific to the backend.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.server.kmip_http import Kmip, byte_string, child, uid, unique_tag, value
from tests.support.backends import ServerDatabase
from tests.support.redis_server import delete_prefix, service_url, unique_prefix, with_prefix
from tests.support.server import ServerProcess, free_port, kms_server_command

PASSWORD = "server test password"


@pytest.fixture()
def redis_db() -> Iterator[tuple[str, str]]:
    url = service_url()
    prefix = unique_prefix("server")
    yield url, prefix
    delete_prefix(url, prefix)


def _database(url: str, prefix: str, *, password: str = PASSWORD, label: str = "label-a") -> ServerDatabase:
    return ServerDatabase(
        "redis-findex",
        with_prefix(url, prefix),
        extra_args=("--redis-master-password", password, "--redis-findex-label", label),
    )


def _index_keys(client: redis.Redis, prefix: str) -> set[bytes]:
    return set(client.scan_iter(match=prefix + "i:*", count=1000))


def test_two_nodes_serve_kmip_and_redis_sees_no_key(tmp_path: Path, redis_db: tuple[str, str]) -> None:
    url, prefix = redis_db
    db = _database(url, prefix)
    with ServerProcess(tmp_path / "a", database=db) as a, ServerProcess(tmp_path / "b", database=db) as b:
        node_a, node_b = Kmip(a.url), Kmip(b.url)
        tag = unique_tag()
        key_id = node_a.create_bare(tag)
        # Created on A, found and used on B at once.
        assert node_b.locate_tag(tag) == [key_id]
        got = node_b.call({"tag": "Get", "type": "Structure", "value": [uid(key_id)]})
        material = bytes.fromhex(value(child(child(child(got, "Object"), "KeyBlock"), "KeyValue"), "KeyMaterial"))
        assert len(material) == 32
        enc = node_b.op("Encrypt", uid(key_id), byte_string("Data", b"hello redis"))
        assert value(enc, "UniqueIdentifier") == key_id
        # The key material, its hex and the tag are nowhere in Redis.
        client = redis.Redis.from_url(url)
        try:
            for key in client.scan_iter(match=prefix + "*", count=1000):
                kind = client.type(key)
                values = [client.get(key) or b""] if kind == b"string" else list(client.smembers(key))
                if kind == b"hash":
                    values = list(client.hgetall(key).values())
                for item in [key, *values]:
                    for needle in (material, material.hex().encode(), material.hex().upper().encode(), tag.encode()):
                        assert needle not in item, key
        finally:
            client.close()


def test_wrong_password_stops_the_server_and_a_new_label_rekeys(tmp_path: Path, redis_db: tuple[str, str]) -> None:
    url, prefix = redis_db
    db = _database(url, prefix)
    tag = unique_tag()
    with ServerProcess(tmp_path / "d", database=db) as server:
        key_id = Kmip(server.url).create_bare(tag)
    client = redis.Redis.from_url(url)
    try:
        old_index = _index_keys(client, prefix)
        wrong = _database(url, prefix, password="not it").args(tmp_path / "d")
        cmd = [*kms_server_command(), *wrong, "--hostname", "127.0.0.1", "--port", str(free_port())]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert run.returncode != 0
        assert "wrong --redis-master-password" in run.stderr
        assert "Traceback" not in run.stderr and PASSWORD not in run.stderr

        rotated = dataclasses.replace(db, extra_args=("--redis-master-password", PASSWORD, "--redis-findex-label", "b"))
        with ServerProcess(tmp_path / "d", database=rotated) as server:
            assert Kmip(server.url).locate_tag(tag) == [key_id]
            new_index = _index_keys(client, prefix)
            assert new_index and not (new_index & old_index)
    finally:
        client.close()
