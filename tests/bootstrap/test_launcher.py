"""The launcher's decisions without a process: when a sealed configuration is used, when bootstrap mode is chosen
(and said), that nothing is sealed without a TEE sealing key, and which /database settings are refused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bootstrap.keys import BootstrapKeys
from bootstrap.launcher import UNSEAL_FAILED, _database_checker, _sealer, _unseal
from bootstrap.provisioned import DatabaseSettings, ProvisionedConfig, TlsMaterial
from bootstrap.sealing import sealed_path, write_sealed
from kms.config import load

KEYS = BootstrapKeys.from_sk(b"\x01" * 32, sealed=True)
OTHER = BootstrapKeys.from_sk(b"\x02" * 32, sealed=True)
UNSEALED = BootstrapKeys.from_sk(b"\x03" * 32, sealed=False)
CONFIG = ProvisionedConfig(TlsMaterial(chain_pem="chain"), DatabaseSettings(database_type="sqlite"))


def test_no_sealed_file_means_bootstrap(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert _unseal(sealed_path(tmp_path), KEYS) is None
    assert "no sealed configuration: bootstrap mode" in caplog.text


def test_sealed_file_of_this_image_is_used(tmp_path: Path) -> None:
    path = sealed_path(tmp_path)
    _sealer(path, KEYS)(CONFIG)
    assert _unseal(path, KEYS) == CONFIG


def test_sealed_file_of_another_image_means_bootstrap_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = sealed_path(tmp_path)
    _sealer(path, KEYS)(CONFIG)
    assert _unseal(path, OTHER) is None
    assert UNSEAL_FAILED in caplog.text
    assert UNSEAL_FAILED == "the sealed configuration cannot be unsealed (different image or platform): bootstrap mode"


def test_a_sealed_file_holding_something_else_means_bootstrap(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = sealed_path(tmp_path)
    write_sealed(path, KEYS.seal_key, b'{"format": "something else"}')
    assert _unseal(path, KEYS) is None
    assert UNSEAL_FAILED in caplog.text


def test_without_a_sealing_key_nothing_is_sealed_or_unsealed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = sealed_path(tmp_path)
    _sealer(path, UNSEALED)(CONFIG)
    assert not path.exists()
    assert "a restart needs a new provisioning" in caplog.text
    _sealer(path, KEYS)(CONFIG)
    assert _unseal(path, UNSEALED) is None
    assert "no sealing key to open it" in caplog.text


def test_database_checker(tmp_path: Path) -> None:
    config = load(["--use-bootstrap-server", "--tee", "simulated", "--tee-sim-dir", str(tmp_path / "sim"),
                   "--sqlite-path", str(tmp_path / "default")], env={})
    check = _database_checker(config)
    assert check(DatabaseSettings(database_type="sqlite", sqlite_path=str(tmp_path / "db"))) is None
    assert (tmp_path / "db").is_dir()  # opened for real
    assert check(DatabaseSettings(database_type="sqlite")) is None  # null path: the server's own --sqlite-path
    assert (tmp_path / "default").is_dir()
    problem = check(DatabaseSettings(database_type="sqlite-enc", database_secret="00" * 32))
    assert problem is not None and "--database-secret does not apply to sqlite-enc" in problem
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert check(DatabaseSettings(database_type="sqlite", sqlite_path=str(blocker / "db"))) is not None
    problem = check(DatabaseSettings(database_type="postgresql", database_url="postgresql://u:hunter2@127.0.0.1:1/x"))
    assert problem == "the postgresql database does not answer"  # never the URL, which may hold a password
    assert config.sqlite_path == str(tmp_path / "default")  # the checks work on a copy
