"""The socket listener's options: names as in Cosmian KMS, TLS mandatory, and the TLS context they produce."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from kms.config import ConfigError, load
from kms.server.socket_server import server_tls_context
from kms.server.tls import p12_to_pem_files
from tests.socket.pki import P12_PASSWORD, Pki


def test_defaults_off() -> None:
    config = load([], env={})
    assert (config.socket_server_start, config.socket_server_port, config.socket_server_hostname) == (
        False,
        5696,
        "0.0.0.0",
    )
    assert config.authority_cert_file is None


def test_flags_env_and_toml(tmp_path: Path, pki: Pki) -> None:
    p12 = str(pki.server_p12)
    config = load(
        ["--https-p12-file", p12, "--socket-server-start", "--socket-server-port", "15696"],
        env={"KMS_SOCKET_SERVER_HOSTNAME": "127.0.0.1", "KMS_AUTHORITY_CERT_FILE": str(pki.ca)},
    )
    assert config.socket_server_start and config.socket_server_port == 15696
    assert config.socket_server_hostname == "127.0.0.1" and config.authority_cert_file == str(pki.ca)
    toml = tmp_path / "server.toml"
    toml.write_text(
        f'[http]\nhttps_p12_file = "{p12}"\nauthority_cert_file = "{pki.ca}"\n'
        '[socket_server]\nsocket_server_start = true\nsocket_server_port = 5697\nsocket_server_hostname = "::1"\n'
    )
    config = load([], env={"COSMIAN_KMS_CONF": str(toml)})
    assert (config.socket_server_start, config.socket_server_port, config.socket_server_hostname) == (
        True,
        5697,
        "::1",
    )
    assert config.authority_cert_file == str(pki.ca)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--socket-server-start"], "--socket-server-start requires --https-p12-file"),
        (["--socket-server-port", "0"], "--socket-server-port 0 is not a TCP port"),
        (["--authority-cert-file", "/nonexistent/ca.pem"], "--authority-cert-file /nonexistent/ca.pem does not exist"),
    ],
)
def test_bad_values_are_named(argv: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load(argv, env={})


def test_tls_context(tmp_path: Path, pki: Pki) -> None:
    cert, key = p12_to_pem_files(pki.server_p12, P12_PASSWORD, tmp_path)
    strict = server_tls_context(cert, key, str(pki.ca))
    assert strict.minimum_version == ssl.TLSVersion.TLSv1_2
    assert strict.verify_mode == ssl.CERT_REQUIRED
    # No authority: nothing to verify a client certificate against, so none is asked for.
    assert server_tls_context(cert, key, None).verify_mode == ssl.CERT_NONE
