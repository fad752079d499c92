"""TLS options of the client against a real HTTPS server with a self-signed certificate.

The default must refuse an untrusted certificate; `accept_invalid_certs` (flag or config) and a pinned
`verified_cert` must each get through; a pin on another certificate must fail; a PKCS#12 client identity must
load (and a wrong password must be one clear error).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, pkcs12
from cryptography.x509.oid import NameOID

from tests.cli.conftest import Result, assert_one_error, run_ckms, write_conf
from tests.support.server import ServerProcess


def _self_signed(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _p12(path: Path, common_name: str, password: bytes) -> x509.Certificate:
    key, cert = _self_signed(common_name)
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"id", key, cert, None, BestAvailableEncryption(password)))
    return cert


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    base = tmp_path_factory.mktemp("tls")
    cert = _p12(base / "server.p12", "kms-test", b"pw")
    server = ServerProcess(
        base / "data", "--https-p12-file", str(base / "server.p12"), "--https-p12-password", "pw", scheme="https"
    )
    server.start()
    yield server, cert.public_bytes(Encoding.PEM).decode()
    server.stop()


def _run(tmp_path: Path, home: Path, workdir: Path, url: str, *args: str, **conf: object) -> Result:
    cfg = write_conf(tmp_path / "tls.json", url, **conf)
    return run_ckms(list(args), cwd=workdir, home=home, conf=cfg)


def test_untrusted_certificate_is_refused(
    https_server: tuple[ServerProcess, str], tmp_path: Path, home: Path, workdir: Path
) -> None:
    server, _ = https_server
    line = assert_one_error(_run(tmp_path, home, workdir, server.url, "server-version"))
    assert server.url in line and "TLS" in line


def test_accept_invalid_certs_flag_and_config(
    https_server: tuple[ServerProcess, str], tmp_path: Path, home: Path, workdir: Path
) -> None:
    server, _ = https_server
    r = _run(tmp_path, home, workdir, server.url, "--accept-invalid-certs", "server-version")
    assert r.returncode == 0 and r.stdout.strip() and r.stderr == "", r.stderr
    r = _run(tmp_path, home, workdir, server.url, "sym", "keys", "create", accept_invalid_certs=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no InsecureRequestWarning noise: the user asked for it


def test_pinned_certificate(https_server: tuple[ServerProcess, str], tmp_path: Path, home: Path, workdir: Path) -> None:
    server, pem = https_server
    r = _run(tmp_path, home, workdir, server.url, "server-version", verified_cert=pem)
    assert r.returncode == 0, r.stderr
    r = _run(tmp_path, home, workdir, server.url, "server-version", tee_conf={"verified_cert": pem})
    assert r.returncode == 0, r.stderr
    other = _self_signed("someone-else")[1].public_bytes(Encoding.PEM).decode()
    assert_one_error(_run(tmp_path, home, workdir, server.url, "server-version", verified_cert=other), "TLS")
    assert_one_error(
        _run(tmp_path, home, workdir, server.url, "server-version", verified_cert="not a pem"), "verified_cert"
    )


def test_client_pkcs12(https_server: tuple[ServerProcess, str], tmp_path: Path, home: Path, workdir: Path) -> None:
    server, _ = https_server
    _p12(tmp_path / "client.p12", "alice", b"secret")
    r = _run(
        tmp_path,
        home,
        workdir,
        server.url,
        "server-version",
        accept_invalid_certs=True,
        ssl_client_pkcs12_path=str(tmp_path / "client.p12"),
        ssl_client_pkcs12_password="secret",
    )
    assert r.returncode == 0, r.stderr
    r = _run(
        tmp_path,
        home,
        workdir,
        server.url,
        "server-version",
        accept_invalid_certs=True,
        ssl_client_pkcs12_path=str(tmp_path / "client.p12"),
        ssl_client_pkcs12_password="wrong",
    )
    assert_one_error(r, "PKCS#12")
