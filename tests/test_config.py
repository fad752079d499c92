"""Configuration: flags win over KMS_* environment, which wins over the TOML file; bad values are named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kms.config import ConfigError, ServerConfig, load


def test_defaults() -> None:
    config = load([], env={})
    assert config == ServerConfig(workers=max(1, min(8, os.cpu_count() or 1)))
    assert (config.database_type, config.port, config.default_username) == ("sqlite", 9998, "admin")
    assert load(["--workers", "3"], env={}).workers == 3


def test_precedence_flags_env_toml(tmp_path: Path) -> None:
    toml = tmp_path / "server.toml"
    toml.write_text(
        'default_username = "from-toml"\n[http]\nport = 7001\nhostname = "10.0.0.1"\n'
        '[db]\nsqlite_path = "/toml/path"\nclear_database = true\n'
    )
    env = {"COSMIAN_KMS_CONF": str(toml), "KMS_PORT": "7002", "KMS_SQLITE_PATH": "/env/path"}
    config = load(["--sqlite-path", "/flag/path"], env=env)
    assert config.sqlite_path == "/flag/path"  # flag beats env and file
    assert config.port == 7002  # env beats file
    assert config.hostname == "10.0.0.1"  # file beats default
    assert config.default_username == "from-toml"
    assert config.clear_database is True


@pytest.mark.parametrize(
    ("argv", "env", "fragment"),
    [
        (["--database-type", "oracle"], {}, "--database-type 'oracle'"),
        (["--port", "70000"], {}, "--port 70000"),
        ([], {"KMS_PORT": "nine"}, "KMS_PORT port: expected an integer"),
        ([], {"KMS_CLEAR_DATABASE": "perhaps"}, "expected true or false"),
        ([], {"COSMIAN_KMS_CONF": "/nonexistent/server.toml"}, "does not exist"),
        (["--https-p12-file", "/nonexistent.p12"], {}, "does not exist"),
    ],
)
def test_bad_values_are_named(argv: list[str], env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        load(argv, env=env)


def test_bad_toml_is_reported(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("port = = 1\n")
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load([], env={"COSMIAN_KMS_CONF": str(toml)})


def test_help_documents_every_option() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kms.server.main", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in (
        "--database-type",
        "--sqlite-path",
        "--port",
        "--hostname",
        "--root-data-path",
        "--https-p12-file",
        "--https-p12-password",
        "--default-username",
        "--clear-database",
        "--quiet",
    ):
        assert flag in out


def test_server_refuses_bad_config_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kms.server.main", "--database-type", "oracle"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("kms-server: error: --database-type 'oracle' is not supported")
    assert "Traceback" not in proc.stderr
