"""`ckms new-database` and sqlite-enc end to end: ckms as a subprocess, two user groups on one real server.

Each group is a configuration file of its own: `ckms new-database` saves the secret there, and every later ckms
command sends it in the KmsDatabaseSecret header (create, encrypt/decrypt including the streamed multi-part form
for files over 1 MiB, locate, export). A group never sees the other's keys.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Result, assert_one_error, run_ckms, write_conf
from tests.support.server import ServerProcess

ID_LINE = "\t  Unique identifier: "
Ckms = Callable[..., Result]


@pytest.fixture(scope="module")
def enc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("ckms-sqlite-enc"), "--database-type", "sqlite-enc")
    server.start()
    yield server
    server.stop()


def _ok(r: Result) -> Result:
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r


def _uid(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith(ID_LINE)]
    assert len(lines) == 1, stdout
    return lines[0][len(ID_LINE) :]


def group(tmp_path: Path, url: str, name: str) -> tuple[Ckms, Path, Path]:
    """A ckms runner with its own configuration file, home and working directory."""
    base = tmp_path / name
    (base / "home").mkdir(parents=True)
    (base / "work").mkdir()
    conf = write_conf(base / "kms.json", url)

    def run(*args: str) -> Result:
        return run_ckms(list(args), cwd=base / "work", home=base / "home", conf=conf)

    return run, conf, base / "work"


def test_two_groups_with_ckms(enc_server: ServerProcess, tmp_path: Path) -> None:
    a, conf_a, work_a = group(tmp_path, enc_server.url, "a")
    b, conf_b, work_b = group(tmp_path, enc_server.url, "b")
    for run, conf in ((a, conf_a), (b, conf_b)):
        out = _ok(run("new-database")).stdout
        saved = json.loads(conf.read_text())
        assert saved["kms_server_url"] == enc_server.url  # the rest of the file is kept
        secret = saved["kms_database_secret"]
        assert secret in out and "A new user encrypted database is configured" in out
        assert set(json.loads(base64.b64decode(secret))) == {"group_id", "key"}
        assert oct(conf.stat().st_mode & 0o777) == "0o600"
    secrets_ = {json.loads(c.read_text())["kms_database_secret"] for c in (conf_a, conf_b)}
    assert len(secrets_) == 2

    tag = f"payroll-{uuid.uuid4().hex[:8]}"
    key_a = _uid(_ok(a("sym", "keys", "create", "--tag", tag)).stdout)
    key_b = _uid(_ok(b("sym", "keys", "create", "--tag", tag)).stdout)
    assert _ok(a("locate", "--tag", tag)).stdout.split()[-1] == key_a
    assert _ok(b("locate", "--tag", tag)).stdout.split()[-1] == key_b

    # Encrypt and decrypt in each group, a small file in one call and a 3 MiB one streamed in parts.
    for run, work in ((a, work_a), (b, work_b)):
        for size in (100, 3 * 1024 * 1024 + 5):
            plain = work / f"data-{size}.bin"
            plain.write_bytes(os.urandom(size))
            _ok(run("sym", "encrypt", "--tag", tag, "-o", f"data-{size}.enc", plain.name))
            _ok(run("sym", "decrypt", "--tag", tag, "-o", f"data-{size}.dec", f"data-{size}.enc"))
            assert (work / f"data-{size}.dec").read_bytes() == plain.read_bytes()

    # A group cannot use, see or decrypt with the other's key.
    assert_one_error(b("sym", "keys", "export", "--key-id", key_a, "-f", "raw", "stolen.raw"), "not found")
    assert_one_error(b("sym", "decrypt", "--key-id", key_a, "-o", "x.dec", str(work_a / "data-100.enc")))
    assert key_a not in _ok(b("locate")).stdout
    assert key_b not in _ok(a("locate")).stdout


def test_new_database_keeps_an_existing_secret(enc_server: ServerProcess, tmp_path: Path) -> None:
    run, conf, _work = group(tmp_path, enc_server.url, "g")
    _ok(run("new-database"))
    first = json.loads(conf.read_text())["kms_database_secret"]
    key = _uid(_ok(run("sym", "keys", "create")).stdout)
    assert_one_error(run("new-database"), "already holds a kms_database_secret")
    assert json.loads(conf.read_text())["kms_database_secret"] == first  # untouched
    out = _ok(run("new-database", "--replace")).stdout
    second = json.loads(conf.read_text())["kms_database_secret"]
    assert second != first and second in out
    assert key not in _ok(run("locate")).stdout  # a new, empty database
    conf.write_text(json.dumps({"kms_server_url": enc_server.url, "kms_database_secret": first}))
    assert key in _ok(run("locate")).stdout  # the first one is still there with its secret


def test_ckms_reports_refused_secrets(enc_server: ServerProcess, tmp_path: Path) -> None:
    run, conf, _work = group(tmp_path, enc_server.url, "r")
    assert_one_error(run("locate"), "Missing KmsDatabaseSecret header in the query")
    _ok(run("new-database"))
    secret = json.loads(conf.read_text())["kms_database_secret"]
    data = json.loads(base64.b64decode(secret))
    wrong = base64.b64encode(json.dumps({"group_id": data["group_id"], "key": "11" * 32}).encode()).decode()
    conf.write_text(json.dumps({"kms_server_url": enc_server.url, "kms_database_secret": wrong}))
    assert_one_error(run("sym", "keys", "create"), "wrong key for database group")
    conf.write_text(json.dumps({"kms_server_url": enc_server.url, "kms_database_secret": "not base64!"}))
    assert_one_error(run("locate"), "KmsDatabaseSecret header cannot be decoded")


def test_new_database_on_a_server_without_sqlite_enc(kms_server: ServerProcess, tmp_path: Path) -> None:
    run, conf, _work = group(tmp_path, kms_server.url, "plain")
    assert_one_error(run("new-database"), "does not run with --database-type sqlite-enc")
    assert "kms_database_secret" not in json.loads(conf.read_text())
