"""Configuration lookup, creation and rewriting, as Cosmian's ckms does it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckms import config
from ckms.errors import CliError


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(config.ENV_CONF, raising=False)


def test_default_file_is_created_with_its_directory(tmp_path: Path) -> None:
    cfg = config.load()
    path = tmp_path / "home" / ".cosmian" / "kms.json"
    assert json.loads(path.read_text()) == {"kms_server_url": "http://0.0.0.0:9998"}
    assert cfg.kms_server_url == "http://0.0.0.0:9998"
    assert cfg.path == path


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="does not exist"):
        config.load(tmp_path / "nope.json")
    assert not (tmp_path / "nope.json").exists()


def test_env_missing_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.ENV_CONF, str(tmp_path / "env.json"))
    with pytest.raises(CliError, match=r"env\.json does not exist"):
        config.load()


def test_conf_option_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = tmp_path / "a.json"
    a.write_text('{"kms_server_url": "http://a:1"}')
    b = tmp_path / "b.json"
    b.write_text('{"kms_server_url": "http://b:2"}')
    monkeypatch.setenv(config.ENV_CONF, str(b))
    assert config.load().kms_server_url == "http://b:2"
    assert config.load(a).kms_server_url == "http://a:1"


def test_fields_are_read(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text(
        json.dumps(
            {
                "kms_server_url": "https://kms:9998",
                "accept_invalid_certs": True,
                "kms_access_token": "tok",
                "ssl_client_pkcs12_path": "/x.p12",
                "ssl_client_pkcs12_password": "pw",
                "kms_database_secret": "c2VjcmV0",
                "oauth2_conf": {"client_id": "x"},
                "tee_conf": {"verified_cert": "PEM"},
            }
        )
    )
    cfg = config.load(p)
    assert cfg.accept_invalid_certs is True
    assert cfg.kms_access_token == "tok"
    assert cfg.ssl_client_pkcs12_password == "pw"
    assert cfg.oauth2_conf == {"client_id": "x"}
    assert cfg.pinned_cert == "PEM"


def test_unknown_fields_survive_a_rewrite(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text(
        json.dumps(
            {
                "kms_server_url": "http://k",
                "accept_invalid_certs": False,
                "jwe_public_key": {"kty": "OKP"},
                "future_field": [1, 2],
            }
        )
    )
    cfg = config.load(p)
    cfg.kms_access_token = "new"
    cfg.save()
    data = json.loads(p.read_text())
    assert data == {
        "kms_server_url": "http://k",
        "accept_invalid_certs": False,
        "kms_access_token": "new",
        "jwe_public_key": {"kty": "OKP"},
        "future_field": [1, 2],
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"accept_invalid_certs": true}', "kms_server_url is missing"),
        ('{"kms_server_url": "http://k", "accept_invalid_certs": "yes"}', "accept_invalid_certs"),
        ('{"kms_server_url": "http://k", "kms_access_token": 3}', "kms_access_token"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(CliError, match=message):
        config.load(p)
