"""A throw-away PKI for the socket tests, made with `cryptography`: the setup PyKMIP's documentation describes.

One CA; a server certificate for 127.0.0.1 (SAN IP, serverAuth) packed in a PKCS#12 as `--https-p12-file` wants;
client certificates: `john_doe` (clientAuth, what PyKMIP's client presents), one whose only extended key usage is
serverAuth, and one issued by a CA the server does not trust. EC P-256 keys: quick to make.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

P12_PASSWORD = "socket-test-p12"


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: Path  # PEM CA certificate: --authority-cert-file, and the client's trust anchor
    server_p12: Path
    client_cert: Path  # CN=john_doe, clientAuth
    client_key: Path
    server_eku_cert: Path  # CN=john_doe, serverAuth only: not a client certificate
    server_eku_key: Path
    stranger_cert: Path  # CN=john_doe, clientAuth, issued by an unknown CA
    stranger_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    eku: list[x509.ObjectIdentifier] | None = None,
    ip: str | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        ).add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write_pair(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("socket-test CA", ca_key, None, ca=True)
    ca = (ca_cert.subject, ca_key)
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue("127.0.0.1", server_key, ca, eku=[ExtendedKeyUsageOID.SERVER_AUTH], ip="127.0.0.1")
    p12 = directory / "server.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"server",
            server_key,
            server_cert,
            [ca_cert],
            serialization.BestAvailableEncryption(P12_PASSWORD.encode()),
        )
    )

    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _write_pair(
        directory, "client", _issue("john_doe", client_key, ca, eku=[ExtendedKeyUsageOID.CLIENT_AUTH]), client_key
    )
    wrong_key = ec.generate_private_key(ec.SECP256R1())
    wrong = _write_pair(
        directory, "server-eku", _issue("john_doe", wrong_key, ca, eku=[ExtendedKeyUsageOID.SERVER_AUTH]), wrong_key
    )
    other_ca_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = (_issue("another CA", other_ca_key, None, ca=True).subject, other_ca_key)
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger = _write_pair(
        directory,
        "stranger",
        _issue("john_doe", stranger_key, other_ca, eku=[ExtendedKeyUsageOID.CLIENT_AUTH]),
        stranger_key,
    )
    return Pki(
        ca=directory / "ca.pem",
        server_p12=p12,
        client_cert=client[0],
        client_key=client[1],
        server_eku_cert=wrong[0],
        server_eku_key=wrong[1],
        stranger_cert=stranger[0],
        stranger_key=stranger[1],
    )
