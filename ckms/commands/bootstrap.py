"""`ckms bootstrap start`: attest a KMS appliance's bootstrap server, then provision it over a pinned connection.

The order is the security argument (spec/bootstrap.md §6, PROTOCOL.md):
1. everything local is read and checked first (expected values, roots, CA, files), so a typo fails before any
   byte leaves the machine;
2. the server certificate is fetched without trusting it, and fresh evidence for our nonce is requested over a
   connection pinned to that certificate; both are verified (vendor chain, binding to the certificate key, nonce,
   measurement for the TEE type, debug refused, TCB). Nothing but the owner's public certificate and a nonce has
   been sent so far;
3. from then on every connection must present that exact certificate (SHA-256 of its DER), so a swapped server
   gets nothing: CSR, certificate chain, database configuration and secret, start;
4. the main KMS must come up presenting the leaf we uploaded; the configuration then pins that leaf.
Every step prints one line; the first failure stops the command with exit 1, before the next request.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from attestation.errors import VerificationError
from attestation.ratls import spki_der
from ckms import config as config_mod
from ckms.attested import (
    Appraisal,
    Checklist,
    StepFailed,
    Trust,
    attest_server,
    expected_and_trust,
    load_config_or_new,
    save_pin,
)
from ckms.context import CliContext, pass_cli
from ckms.errors import ClientError, CliError
from ckms.measurements import ExpectedValues
from ckms.pinning import (
    PinMismatch,
    PinnedClient,
    ServerRefused,
    base_url,
    fetch_certificate,
    fingerprint,
    tls_context,
)

DATABASE_TYPES = ("sqlite", "sqlite-enc", "postgresql", "mysql", "redis-findex")
POLL_INTERVAL = 0.5

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUT = click.Path(dir_okay=False, path_type=Path)


# ---------------------------------------------------------------------------------------------- local inputs


@dataclass
class Inputs:
    """Everything read and checked before the first connection."""

    bootstrap_url: str
    kms_url: str
    expected: ExpectedValues
    trust: Trust
    context: ssl.SSLContext
    owner_spki_sha256: bytes | None
    subject: x509.Name | None
    sans: tuple[str, ...]
    ca_chain: list[x509.Certificate] = field(default_factory=list)
    ca_key: Any = None
    days: int = 365
    csr_out: Path | None = None
    chain: list[x509.Certificate] = field(default_factory=list)  # --certificate: leaf first
    database: dict[str, Any] = field(default_factory=dict)  # the /database body (holds the secret: never print)
    start: bool = True
    wait_timeout: float = 120.0
    conf_path: Path | None = None
    conf: config_mod.ClientConfig | None = None


def _load_pem_certs(path: Path, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CliError(f"{what} {path}: not PEM certificates ({exc})") from None
    if not certs:
        raise CliError(f"{what} {path}: no certificate")
    return certs


def _load_ca(ca_cert: Path, ca_key: Path) -> tuple[list[x509.Certificate], Any]:
    chain = _load_pem_certs(ca_cert, "--ca-cert")
    try:
        key = serialization.load_pem_private_key(ca_key.read_bytes(), None)
    except TypeError:
        raise CliError(f"--ca-key {ca_key}: the key is encrypted; give an unencrypted PEM key") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"--ca-key {ca_key}: not a PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
                      | ed448.Ed448PrivateKey):
        raise CliError(f"--ca-key {ca_key}: unsupported key type")
    if spki_der(key) != spki_der(chain[0]):
        raise CliError("--ca-key is not the key of the first certificate of --ca-cert")
    try:
        constraints = chain[0].extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is not None and not constraints.ca:
        raise CliError(f"--ca-cert {ca_cert}: not a CA certificate (BasicConstraints CA:FALSE)")
    now = datetime.now(UTC)
    if not chain[0].not_valid_before_utc <= now <= chain[0].not_valid_after_utc:
        raise CliError(f"--ca-cert {ca_cert}: the CA certificate is not valid now")
    return chain, key


def _load_signed_chain(path: Path) -> list[x509.Certificate]:
    """`--certificate`: leaf first, each certificate issued by the next (checked here, before sending it)."""
    chain = _load_pem_certs(path, "--certificate")
    now = datetime.now(UTC)
    leaf = chain[0]
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise CliError(f"--certificate {path}: the leaf certificate is not valid now")
    for child, parent in itertools.pairwise(chain):
        try:
            child.verify_directly_issued_by(parent)
        except Exception:
            raise CliError(
                f"--certificate {path}: {child.subject.rfc4514_string()} is not issued by the next certificate "
                f"({parent.subject.rfc4514_string()}); put the leaf first, then its issuers"
            ) from None
    return chain


def _database_secret(path: Path) -> str:
    """The database master secret as hex (the file's content is never echoed, even in an error)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise CliError(f"--database-secret-file {path}: cannot be read as text") from None
    text = text.removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise CliError(f"--database-secret-file {path}: the content is not hexadecimal") from None
    if len(raw) < 16:
        raise CliError(f"--database-secret-file {path}: the secret is shorter than 16 bytes")
    return raw.hex()


def _database_body(opts: dict[str, Any]) -> dict[str, Any]:
    db_type = opts["database_type"]
    url = opts["database_url"]
    if db_type in ("postgresql", "mysql", "redis-findex") and not url:
        raise click.UsageError(f"--database-type {db_type} needs --database-url")
    if db_type == "redis-findex" and not (opts["redis_master_password"] and opts["redis_findex_label"]):
        raise click.UsageError("--database-type redis-findex needs --redis-master-password and --redis-findex-label")
    sqlite_path = None
    if db_type in ("sqlite", "sqlite-enc"):
        if url:
            raise click.UsageError(f"--database-type {db_type} takes --sqlite-path, not --database-url")
        sqlite_path = opts["sqlite_path"]  # None: the server's own --sqlite-path, not a path relative to its cwd
    return {
        "database_type": db_type,
        "database_url": url,
        "sqlite_path": sqlite_path,
        "redis_master_password": opts["redis_master_password"],
        "redis_findex_label": opts["redis_findex_label"],
        "database_secret": None,  # read with the other local files, in _read_inputs
        "clear_database": bool(opts["clear_database"]),
    }


def _owner_spki_sha256(path: Path, password: str | None) -> bytes:
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        secret = password.encode() if password else None
        _key, cert, _chain = pkcs12.load_key_and_certificates(path.read_bytes(), secret)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot open the owner PKCS#12 {path} (wrong password?): {exc}") from None
    if cert is None:
        raise CliError(f"the owner PKCS#12 {path} holds no certificate")
    return hashlib.sha256(spki_der(cert)).digest()


def _check_modes(opts: dict[str, Any]) -> str:
    """Exactly one way to get the API certificate: local CA, CSR export, or an externally signed chain."""
    modes = [
        name
        for name, present in (
            ("ca", bool(opts["ca_cert"] or opts["ca_key"])),
            ("csr-out", opts["csr_out"] is not None),
            ("certificate", opts["certificate"] is not None),
        )
        if present
    ]
    if len(modes) != 1:
        raise click.UsageError("give exactly one of --ca-cert/--ca-key, --csr-out or --certificate")
    mode = modes[0]
    if mode == "ca" and not (opts["ca_cert"] and opts["ca_key"]):
        raise click.UsageError("--ca-cert and --ca-key go together")
    if mode != "certificate" and not opts["subject"]:
        raise click.UsageError("--subject is required to request a CSR")
    if mode == "certificate" and (opts["subject"] or opts["sans"]):
        raise click.UsageError("--subject/--san do not apply to --certificate (the certificate names the server)")
    if mode == "csr-out" and opts["no_start"]:
        raise click.UsageError("--no-start does not apply to --csr-out (nothing is started then)")
    return mode


def _parse_subject(text: str) -> x509.Name:
    try:
        name = x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise click.UsageError(f"--subject {text!r}: not an RFC 4514 name ({exc})") from None
    if not len(name):
        raise click.UsageError("--subject is empty")
    return name


def _check_sans(sans: tuple[str, ...]) -> None:
    for san in sans:
        if not san or any(c.isspace() for c in san) or "," in san:
            raise click.UsageError(f"--san {san!r}: a DNS name or an IP address")


# ---------------------------------------------------------------------------------------------- CSR and signing


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _name_key(name: x509.GeneralName) -> tuple[str, str]:
    return (type(name).__name__, str(name.value).lower())


def _csr_sans(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        return list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _attributes(name: x509.Name) -> set[tuple[str, str]]:
    return {(attr.oid.dotted_string, str(attr.value)) for attr in name}


def check_csr(csr_pem: object, subject: x509.Name, sans: tuple[str, ...]) -> x509.CertificateSigningRequest:
    """The server's CSR, checked: it parses, its self-signature verifies (the server holds the key), and it asks
    for exactly the subject and names we requested (a certificate must not name what the owner did not ask)."""
    if not isinstance(csr_pem, str):
        raise VerificationError("csr", "the answer has no csr_pem")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as exc:
        raise VerificationError("csr", f"not a PEM CSR ({exc})") from None
    if not csr.is_signature_valid:
        raise VerificationError("csr-signature", "the CSR signature does not verify")
    if _attributes(csr.subject) != _attributes(subject):
        raise VerificationError(
            "csr-content", f"the CSR subject is {csr.subject.rfc4514_string()}, not the requested one"
        )
    wanted = {_name_key(_general_name(s)) for s in sans}
    got = {_name_key(n) for n in _csr_sans(csr)}
    if got != wanted:
        raise VerificationError(
            "csr-content",
            f"the CSR names {sorted(v for _, v in got)}, not the requested {sorted(v for _, v in wanted)}",
        )
    return csr


def sign_csr(
    csr: x509.CertificateSigningRequest, ca_cert: x509.Certificate, ca_key: Any, *, days: int, now: datetime
) -> x509.Certificate:
    """A TLS server certificate for the CSR's key, subject and names, issued by the owner's CA (never beyond the
    CA's own expiry, so the chain stays valid for the whole life of the leaf)."""
    public = csr.public_key()
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=isinstance(public, rsa.RSAPublicKey), data_encipherment=False,
                key_agreement=isinstance(public, ec.EllipticCurvePublicKey), key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    sans = _csr_sans(csr)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    algorithm = None if isinstance(ca_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()
    return builder.sign(ca_key, algorithm)


def _pem(certs: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


# ---------------------------------------------------------------------------------------------- remote steps


def _owner_lines(checklist: Checklist, appraisal: Appraisal, owner: bytes | None) -> None:
    """Whether the owner's key is attested (HOST_DATA / MRCONFIGID): informative, the server enforces it."""
    if owner is None:
        return
    bound = appraisal.claims.host_data
    if bound is not None and bound[:32] == owner:
        field_name = "HOST_DATA" if appraisal.claims.tee == "sev-snp" else "MRCONFIGID"
        checklist.ok(
            "owner-binding", f"the evidence's {field_name} is the hash of the owner key: only it may provision"
        )


def _status(checklist: Checklist, client: PinnedClient, owner: bytes | None) -> None:
    try:
        status = client.get("/bootstrap/status")
    except PinMismatch as exc:
        checklist.fail("tls-pin", f"GET /bootstrap/status: {exc}")
    except ClientError as exc:
        checklist.fail("bootstrap-state", f"GET /bootstrap/status: {exc.message}")
    state = status.get("state") if isinstance(status, dict) else None
    if state != "waiting-certificate":
        checklist.fail(
            "bootstrap-state",
            f"the bootstrap server is in state {state!r}, not 'waiting-certificate': it was already provisioned "
            "(by whom is unknown), so nothing is sent",
        )
    checklist.ok("bootstrap-state", "bootstrap server waiting for its certificate")
    owner_bound = status.get("owner_bound")
    if owner_bound is True and owner is None:
        checklist.fail("owner-binding", "the server accepts provisioning only from its owner: give --owner-pkcs12")
    if owner_bound is True:
        checklist.ok("owner-binding", "the server accepts provisioning only from the owner's client certificate")
    elif owner_bound is False:
        checklist.skip("owner-binding", "owner binding (the server accepts provisioning from any client)")


def _post(checklist: Checklist, client: PinnedClient, path: str, body: dict[str, Any], check: str) -> Any:
    try:
        return client.post(path, body)
    except PinMismatch as exc:
        checklist.fail("tls-pin", f"POST {path}: {exc}")
    except ClientError as exc:
        checklist.fail(check, f"POST {path}: {exc.message}")


def wait_for_kms(url: str, leaf_der: bytes, context: ssl.SSLContext, timeout: float) -> str:
    """Poll GET /version until the main KMS answers over a connection pinned to our leaf (bounded by `timeout`).

    Until it is up, connections are refused or still meet the bootstrap certificate: both mean "not yet". Any
    HTTP answer over a connection pinned to our leaf means it is up, even a refusal (a KMS that wants
    credentials for /version). Returns the version; raises ClientError with the last reason at the deadline."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            with PinnedClient(url, leaf_der, context) as client:
                version = client.get("/version")
            return version if isinstance(version, str) else str(version)
        except ServerRefused as exc:
            return f"(version not disclosed: {exc.message})"
        except (PinMismatch, ClientError) as exc:
            last = str(exc)
        if time.monotonic() >= deadline:
            raise ClientError(f"the KMS did not answer at {base_url(url)} with the provisioned certificate within "
                              f"{timeout:g} s (last: {last})")
        time.sleep(POLL_INTERVAL)


# ---------------------------------------------------------------------------------------------- the command


@click.group()
def bootstrap() -> None:
    """Provision a KMS appliance through its attested bootstrap server."""


@bootstrap.command("start")
@click.option("--bootstrap-url", metavar="URL",
              help="https://host:port of the bootstrap server (default: bootstrap_server_url of the configuration)")
@click.option("--kms-url", metavar="URL",
              help="where the main KMS answers after the start (default: the bootstrap server's host and port)")
@click.option("--measurements", type=_FILE, help="measurements.json of the appliance image (expected values)")
@click.option("--expected-measurement", multiple=True, metavar="HEX",
              help="an accepted measurement for whatever TEE type the server has (repeatable)")
@click.option("--trust-simulated-root", "simulated_roots", multiple=True, type=_FILE, metavar="PEM",
              help="trust this simulated TEE root (Intel-style root or AMD-style ARK) instead of the vendor roots")
@click.option("--owner-pkcs12", type=_FILE, help="the owner's client certificate and key (PKCS#12)")
@click.option("--owner-pkcs12-password", metavar="PASSWORD", envvar="CKMS_OWNER_PKCS12_PASSWORD",
              help="password of --owner-pkcs12 (or env CKMS_OWNER_PKCS12_PASSWORD)")
@click.option("--subject", metavar="DN", help="subject of the KMS certificate, e.g. CN=kms.example.com,O=Example")
@click.option("--san", "sans", multiple=True, metavar="NAME", help="DNS name or IP address of the KMS (repeatable)")
@click.option("--ca-cert", type=_FILE, metavar="PEM", help="the owner's CA certificate (then its issuers, if any)")
@click.option("--ca-key", type=_FILE, metavar="PEM", help="the owner's CA private key (unencrypted PEM)")
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True,
              help="validity of the certificate signed with --ca-cert")
@click.option("--csr-out", type=_OUT, help="write the server's CSR here and stop (sign it with an external CA)")
@click.option("--certificate", type=_FILE, metavar="PEM",
              help="the externally signed certificate chain (leaf first) for the CSR written by --csr-out")
@click.option("--database-type", type=click.Choice(DATABASE_TYPES), default="sqlite", show_default=True)
@click.option("--database-url", metavar="URL", help="database URL (postgresql, mysql, redis-findex)")
@click.option("--sqlite-path", metavar="PATH", help="SQLite folder on the server (default: the server's own)")
@click.option("--redis-master-password", metavar="PASSWORD", help="redis-findex master password")
@click.option("--redis-findex-label", metavar="LABEL", help="redis-findex label")
@click.option("--clear-database", is_flag=True, help="start from an empty database")
@click.option("--database-secret-file", type=_FILE,
              help="file holding the database master secret (hex); it is sent once and never printed")
@click.option("--no-start", is_flag=True, help="provision but do not start the KMS")
@click.option("--wait-timeout", type=click.FloatRange(1, 3600), default=120.0, show_default=True,
              help="seconds to wait for the KMS to answer after the start")
@click.option("--json", "as_json", is_flag=True, help="print the steps as a JSON list")
@pass_cli
@click.pass_context
def start_cmd(ctx: click.Context, obj: CliContext, **opts: Any) -> None:
    """Verify the bootstrap server's attestation, then provision it (certificate, database) and start the KMS."""
    mode = _check_modes(opts)
    subject = _parse_subject(opts["subject"]) if opts["subject"] else None
    _check_sans(opts["sans"])
    database = _database_body(opts)
    checklist = Checklist(opts["as_json"])
    try:
        try:
            inputs = _read_inputs(checklist, obj, opts, mode, subject, database)
        except CliError as exc:
            checklist.fail("input", exc.message)
        _provision(checklist, inputs, mode)
    except StepFailed:
        checklist.finish()
        ctx.exit(1)
    checklist.finish()


def _read_inputs(
    checklist: Checklist, obj: CliContext, opts: dict[str, Any], mode: str, subject: x509.Name | None,
    database: dict[str, Any],
) -> Inputs:
    conf_path, cfg = load_config_or_new(obj.conf)
    url = opts["bootstrap_url"] or (cfg.extra.get("bootstrap_server_url") if cfg is not None else None)
    if not isinstance(url, str) or not url:
        raise CliError("no bootstrap server: give --bootstrap-url https://host:port")
    bootstrap_url = base_url(url)
    kms_url = base_url(opts["kms_url"]) if opts["kms_url"] else bootstrap_url
    expected, trust = expected_and_trust(
        checklist,
        measurements=opts["measurements"],
        expected_measurement=opts["expected_measurement"],
        simulated_roots=opts["simulated_roots"],
        cfg=cfg,
        conf_path=conf_path,
    )
    if opts["database_secret_file"] is not None:
        database["database_secret"] = _database_secret(opts["database_secret_file"])
    owner = None
    if opts["owner_pkcs12"] is not None:
        owner = _owner_spki_sha256(opts["owner_pkcs12"], opts["owner_pkcs12_password"])
    context = tls_context(client_pkcs12=opts["owner_pkcs12"], client_password=opts["owner_pkcs12_password"])
    inputs = Inputs(
        bootstrap_url=bootstrap_url, kms_url=kms_url, expected=expected, trust=trust, context=context,
        owner_spki_sha256=owner, subject=subject, sans=tuple(opts["sans"]), days=opts["days"],
        database=database, start=not opts["no_start"], wait_timeout=opts["wait_timeout"],
        conf_path=conf_path, conf=cfg,
    )
    if mode == "ca":
        inputs.ca_chain, inputs.ca_key = _load_ca(opts["ca_cert"], opts["ca_key"])
    elif mode == "csr-out":
        inputs.csr_out = opts["csr_out"]
    else:
        inputs.chain = _load_signed_chain(opts["certificate"])
    return inputs


def _provision(checklist: Checklist, inputs: Inputs, mode: str) -> None:
    url = inputs.bootstrap_url
    try:
        cert_der = fetch_certificate(url, inputs.context)
    except ClientError as exc:
        checklist.fail("tls-connect", exc.message)
    checklist.ok("tls-connect", f"bootstrap server certificate fetched from {url} (sha256 {fingerprint(cert_der)})")
    client, fresh = attest_server(
        checklist, url=url, path="/attestation", context=inputs.context, expected=inputs.expected,
        trust=inputs.trust, cert_der=cert_der,
    )
    with client:
        checklist.ok("tls-pin", f"every further request must meet this exact certificate (sha256 {client.pin})")
        _owner_lines(checklist, fresh, inputs.owner_spki_sha256)
        _status(checklist, client, inputs.owner_spki_sha256)
        chain = _certificate_chain(checklist, client, inputs, mode)
        if chain is None:
            return
        leaf = chain[0]
        _post(checklist, client, "/certificate", {"chain_pem": _pem(chain)}, "certificate")
        checklist.ok(
            "certificate", f"certificate chain uploaded ({leaf.subject.rfc4514_string()}, {len(chain)} certificates)"
        )
        _post(checklist, client, "/database", inputs.database, "database")
        secret = "with" if inputs.database.get("database_secret") else "without"
        checklist.ok("database", f"database configuration sent ({inputs.database['database_type']}, {secret} secret)")
        if not inputs.start:
            checklist.skip("start", "KMS start (--no-start): the server waits, provisioned, in state 'ready'")
            return
        _post(checklist, client, "/start", {}, "start")
        checklist.ok("start", "start requested: the bootstrap server hands over to the KMS")
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    try:
        version = wait_for_kms(inputs.kms_url, leaf_der, inputs.context, inputs.wait_timeout)
    except ClientError as exc:
        checklist.fail("kms-ready", exc.message)
    checklist.ok("kms-ready", f"KMS {version} answers at {inputs.kms_url} with the provisioned certificate")
    assert inputs.conf_path is not None
    try:
        save_pin(inputs.conf_path, inputs.conf, inputs.kms_url, _pem([leaf]))
    except OSError as exc:
        checklist.fail("config", f"cannot write {inputs.conf_path}: {exc.strerror or exc}")
    checklist.ok(
        "config", f"configuration {inputs.conf_path} updated: kms_server_url {inputs.kms_url}, verified_cert pinned "
        f"(sha256 {fingerprint(leaf_der)}); check it any time with `ckms verify`",
    )


def _certificate_chain(
    checklist: Checklist, client: PinnedClient, inputs: Inputs, mode: str
) -> list[x509.Certificate] | None:
    """The API certificate chain to upload (None when the CSR was exported and the command stops there)."""
    if mode == "certificate":
        name = inputs.chain[0].subject.rfc4514_string()
        checklist.skip("csr", f"CSR (using the externally signed certificate {name})")
        return inputs.chain
    assert inputs.subject is not None
    answer = _post(
        checklist, client, "/csr", {"subject": inputs.subject.rfc4514_string(), "sans": list(inputs.sans)}, "csr"
    )
    try:
        csr = check_csr(answer.get("csr_pem") if isinstance(answer, dict) else None, inputs.subject, inputs.sans)
    except VerificationError as exc:
        checklist.fail(exc.check, exc.message)
    names = ", ".join(inputs.sans) or "no SAN"
    checklist.ok("csr", f"CSR from the server for {csr.subject.rfc4514_string()} ({names}); its signature verifies")
    if mode == "csr-out":
        assert inputs.csr_out is not None
        try:
            inputs.csr_out.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        except OSError as exc:
            checklist.fail("csr-out", f"cannot write {inputs.csr_out}: {exc.strerror or exc}")
        checklist.ok("csr-out", f"CSR written to {inputs.csr_out}")
        checklist.skip(
            "certificate",
            "certificate, database and start: have the CSR signed (serverAuth), then run `ckms bootstrap start` "
            "again with the same verification options and --certificate CHAIN.pem (leaf first)",
        )
        return None
    leaf = sign_csr(csr, inputs.ca_chain[0], inputs.ca_key, days=inputs.days, now=datetime.now(UTC))
    checklist.ok(
        "csr-signature",
        f"CSR signed by the local CA {inputs.ca_chain[0].subject.rfc4514_string()} "
        f"(valid until {leaf.not_valid_after_utc.date().isoformat()})",
    )
    return [leaf, *inputs.ca_chain]
