"""Certificates of the bootstrap flow: the RA-TLS certificate of the bootstrap key, the CSR of the API key, and
the checks on uploaded chains and PKCS#12 files."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from attestation.ratls import read_certificate, spki_der, verify_certificate
from attestation.tee.simulated import SimulatedTee
from bootstrap import certs
from bootstrap.errors import ProvisioningError
from bootstrap.keys import BootstrapKeys
from kms.config import DEFAULT_BOOTSTRAP_SUBJECT

NOW = datetime.now(UTC)
KEYS = BootstrapKeys.from_sk(b"\x07" * 32, sealed=True)
API_SPKI = spki_der(KEYS.api_key)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str, public_key: object, issuer: str, signer: object, *, ca: bool = False,
    not_before: datetime | None = None, not_after: datetime | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
        .public_key(public_key).serial_number(x509.random_serial_number())  # type: ignore[arg-type]
        .not_valid_before(not_before or NOW - timedelta(days=1)).not_valid_after(not_after or NOW + timedelta(days=1))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pki() -> dict[str, object]:
    root_key = ec.generate_private_key(ec.SECP256R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert("root", root_key.public_key(), "root", root_key, ca=True)
    inter = _cert("inter", inter_key.public_key(), "root", root_key, ca=True)
    leaf = _cert("kms", KEYS.api_key.public_key(), "inter", inter_key)
    return {"root": root, "root_key": root_key, "inter": inter, "inter_key": inter_key, "leaf": leaf}


def _pem(*chain: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)


# ------------------------------------------------------------------------------------------------ RA-TLS / CSR


def test_bootstrap_certificate_is_ra_tls_of_the_bootstrap_key(tmp_path: Path) -> None:
    sim = SimulatedTee(tmp_path, "tdx")
    cert = certs.bootstrap_certificate(
        KEYS.bootstrap_key, sim, "simulated-tdx", subject=DEFAULT_BOOTSTRAP_SUBJECT, days=30,
        sans=["host.example", "localhost", "127.0.0.1"], now=NOW,
    )
    found = read_certificate(cert)
    assert found.form == "standard" and found.claims["tee"] == "simulated-tdx"
    assert spki_der(cert) == spki_der(KEYS.bootstrap_key)
    assert cert.subject.rfc4514_string() == DEFAULT_BOOTSTRAP_SUBJECT
    assert cert.not_valid_after_utc == (NOW + timedelta(days=30)).replace(microsecond=0)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["host.example", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    collateral = sim.quote(bytes(64)).collateral
    claims = verify_certificate(cert, now=NOW, roots=sim.roots(), collateral=collateral)
    assert claims.tee == "tdx"


def test_bootstrap_sans() -> None:
    assert certs.bootstrap_sans("0.0.0.0")[1:] == ["localhost", "127.0.0.1"]
    assert certs.bootstrap_sans("10.1.2.3")[-1] == "10.1.2.3"
    assert certs.bootstrap_sans("127.0.0.1").count("127.0.0.1") == 1


def test_csr_is_signed_by_the_api_key_and_asks_for_the_names() -> None:
    pem = certs.build_csr(KEYS.api_key, certs.parse_subject("CN=kms.example.com,O=Owner"),
                          certs.parse_sans(["kms.example.com", "10.0.0.5"]))
    csr = x509.load_pem_x509_csr(pem.encode())
    assert csr.is_signature_valid
    assert spki_der(csr.public_key()) == API_SPKI
    assert csr.subject.rfc4514_string() == "CN=kms.example.com,O=Owner"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["kms.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]


@pytest.mark.parametrize("subject", [None, "", "   ", 42, "no equals sign", "CN=x" * 400])
def test_bad_subjects(subject: object) -> None:
    with pytest.raises(ProvisioningError, match="subject"):
        certs.parse_subject(subject)


@pytest.mark.parametrize("sans", ["kms.example.com", [1], ["bad name"], ["-bad.example"], ["a" * 300], ["x"] * 101])
def test_bad_sans(sans: object) -> None:
    with pytest.raises(ProvisioningError):
        certs.parse_sans(sans)


def test_good_sans() -> None:
    assert certs.parse_sans(None) == []
    assert certs.parse_sans(["*.example.com", "::1", "a-b.c"]) == ["*.example.com", "::1", "a-b.c"]


# ------------------------------------------------------------------------------------------------ chains


def test_a_full_chain_and_a_lone_leaf_pass(pki: dict) -> None:
    chain = certs.load_chain(_pem(pki["leaf"], pki["inter"], pki["root"]))
    certs.check_chain(chain, API_SPKI, NOW)
    certs.check_chain(certs.load_chain(_pem(pki["leaf"])), API_SPKI, NOW)


def test_the_leaf_must_carry_the_api_key(pki: dict) -> None:
    other = _cert("kms", ec.generate_private_key(ec.SECP256R1()).public_key(), "inter", pki["inter_key"])
    with pytest.raises(ProvisioningError, match="not the API key"):
        certs.check_chain(certs.load_chain(_pem(other, pki["inter"])), API_SPKI, NOW)
    with pytest.raises(ProvisioningError, match="not the API key"):  # issuer first: the leaf is the CA
        certs.check_chain(certs.load_chain(_pem(pki["inter"], pki["leaf"])), API_SPKI, NOW)


@pytest.mark.parametrize(
    ("where", "window", "fragment"),
    [
        ("leaf", (NOW - timedelta(days=3), NOW - timedelta(days=1)), "leaf certificate has expired"),
        ("leaf", (NOW + timedelta(days=1), NOW + timedelta(days=3)), "leaf certificate is not valid yet"),
        ("inter", (NOW - timedelta(days=3), NOW - timedelta(days=1)), "certificate 2 of the chain has expired"),
    ],
)
def test_dates(pki: dict, where: str, window: tuple[datetime, datetime], fragment: str) -> None:
    leaf, inter = pki["leaf"], pki["inter"]
    if where == "leaf":
        leaf = _cert("kms", KEYS.api_key.public_key(), "inter", pki["inter_key"], not_before=window[0],
                     not_after=window[1])
    else:
        inter = _cert("inter", pki["inter_key"].public_key(), "root", pki["root_key"], ca=True,
                      not_before=window[0], not_after=window[1])
    with pytest.raises(ProvisioningError, match=fragment):
        certs.check_chain(certs.load_chain(_pem(leaf, inter)), API_SPKI, NOW)


def test_chain_signatures_are_checked(pki: dict) -> None:
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = _cert("inter", impostor_key.public_key(), "root", pki["root_key"], ca=True)  # same name, other key
    with pytest.raises(ProvisioningError, match="signature of certificate 1"):
        certs.check_chain(certs.load_chain(_pem(pki["leaf"], impostor)), API_SPKI, NOW)
    with pytest.raises(ProvisioningError, match="not issued by certificate 2"):
        certs.check_chain(certs.load_chain(_pem(pki["leaf"], pki["root"])), API_SPKI, NOW)
    forged_inter = _cert("inter", pki["inter_key"].public_key(), "root", impostor_key, ca=True)
    with pytest.raises(ProvisioningError, match="signature of certificate 2"):
        certs.check_chain(certs.load_chain(_pem(pki["leaf"], forged_inter, pki["root"])), API_SPKI, NOW)


@pytest.mark.parametrize(
    "text", [None, 5, "", "hello", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
)
def test_not_certificates(text: object) -> None:
    with pytest.raises(ProvisioningError, match="chain_pem"):
        certs.load_chain(text)


def test_too_many_certificates(pki: dict) -> None:
    with pytest.raises(ProvisioningError, match="1 to 10"):
        certs.load_chain(_pem(*[pki["root"]] * 11))


# ------------------------------------------------------------------------------------------------ PKCS#12


def test_pkcs12_gives_the_ordered_chain_and_the_key(pki: dict) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    leaf = _cert("ext", key.public_key(), "inter", pki["inter_key"])
    unrelated = _cert("unrelated", key.public_key(), "unrelated", key)
    data = pkcs12.serialize_key_and_certificates(
        b"x", key, leaf, [pki["root"], unrelated, pki["inter"]], serialization.BestAvailableEncryption(b"pw")
    )
    chain_pem, key_pem = certs.load_pkcs12(data, "pw", NOW)
    assert x509.load_pem_x509_certificates(chain_pem.encode()) == [leaf, pki["inter"], pki["root"]]
    assert spki_der(serialization.load_pem_private_key(key_pem.encode(), None)) == spki_der(key)


def test_pkcs12_refusals(pki: dict) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _cert("ext", key.public_key(), "inter", pki["inter_key"])
    data = pkcs12.serialize_key_and_certificates(b"x", key, leaf, None, serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(ProvisioningError, match="wrong password") as info:
        certs.load_pkcs12(data, "not-the-password", NOW)
    assert "not-the-password" not in str(info.value)
    with pytest.raises(ProvisioningError, match="wrong password"):
        certs.load_pkcs12(b"garbage", "pw", NOW)
    certs.load_pkcs12(data, "pw", NOW)  # RSA keys are fine for TLS
    # (A PKCS#12 whose certificate is not for its key cannot be built with `cryptography`; that check is
    # check_chain's, tested above, called with key_name="the key of the PKCS#12".)
    expired = _cert("ext", key.public_key(), "inter", pki["inter_key"], not_before=NOW - timedelta(days=9),
                    not_after=NOW - timedelta(days=1))
    old = pkcs12.serialize_key_and_certificates(b"x", key, expired, None, serialization.NoEncryption())
    with pytest.raises(ProvisioningError, match="expired"):
        certs.load_pkcs12(old, "", NOW)
    no_key = pkcs12.serialize_key_and_certificates(b"x", None, leaf, None, serialization.NoEncryption())
    with pytest.raises(ProvisioningError, match="must hold a private key"):
        certs.load_pkcs12(no_key, "", NOW)
