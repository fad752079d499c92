"""Helpers of the bootstrap tests: a kms-server subprocess in bootstrap mode whose log lines can be waited on, a
tiny local CA, owner client certificates, and HTTPS calls to the bootstrap server (verify=False: the tests check
the certificate themselves, through attestation, as ckms does)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attestation.ratls import spki_der, verify_claims_evidence
from attestation.tee.simulated import SimulatedTee
from tests.support.server import free_port, kms_server_command

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

WAIT = 60.0
UNSEALED_MARK = "the sealed configuration was unsealed"
UNSEAL_FAILED_MARK = "the sealed configuration cannot be unsealed (different image or platform): bootstrap mode"
LISTENING_MARK = "bootstrap server listening on"
WORKER_READY = re.compile(r"KMS worker \d+ ready$")


class BootstrapProcess:
    """`kms-server --use-bootstrap-server --tee simulated ...` with its stderr kept line by line; `wait_for(pattern)`
    returns once a line matching it was logged (no sleeps), failing with the log if the process ended first."""

    def __init__(
        self, base: Path, *extra: str, port: int | None = None, bootstrap_port: int | None = None,
        sim_dir: Path | None = None, env: dict[str, str] | None = None,
    ) -> None:
        self.base = base
        self.sim_dir = sim_dir or base / "sim"
        self.port = port or free_port()
        self.bootstrap_port = bootstrap_port or free_port()
        self.extra = list(extra)
        self.tmpdir = base / "tmp"
        self.env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._ended = False

    @property
    def data_dirs(self) -> list[Path]:
        return [self.base / "root", self.base / "sqlite", self.sim_dir]

    @property
    def bootstrap_url(self) -> str:
        return f"https://127.0.0.1:{self.bootstrap_port}"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            *kms_server_command(),
            "--use-bootstrap-server", "--tee", "simulated", "--tee-sim-dir", str(self.sim_dir),
            "--hostname", "127.0.0.1", "--port", str(self.port), "--bootstrap-server-port", str(self.bootstrap_port),
            "--root-data-path", str(self.base / "root"), "--sqlite-path", str(self.base / "sqlite"),
            "--workers", "1", *self.extra,
        ]

    def start(self) -> BootstrapProcess:
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("COSMIAN_KMS_CONF", None)
        env["TMPDIR"] = str(self.tmpdir)
        env.update(self.env)
        self.lines, self._ended = [], False
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        return self

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = WAIT, start: int = 0) -> str:
        """The first line (from index `start`) matching `pattern` (substring or regex), once logged."""
        def match(line: str) -> bool:
            return bool(pattern.search(line)) if isinstance(pattern, re.Pattern) else pattern in line

        deadline = threading.Event()
        timer = threading.Timer(timeout, lambda: (deadline.set(), self._wake()))
        timer.start()
        try:
            with self._cond:
                seen = start
                while True:
                    for line in self.lines[seen:]:
                        if match(line):
                            return line
                    seen = len(self.lines)
                    if self._ended:
                        raise AssertionError(f"kms-server ended without logging {pattern!r}:\n" + self.log())
                    if deadline.is_set():
                        raise AssertionError(f"kms-server did not log {pattern!r}:\n" + self.log())
                    self._cond.wait()
        finally:
            timer.cancel()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_bootstrap(self) -> BootstrapProcess:
        self.wait_for(LISTENING_MARK)
        return self

    def wait_kms(self, start: int = 0) -> BootstrapProcess:
        self.wait_for(WORKER_READY, start=start)
        return self

    def wait_exit(self, timeout: float = WAIT) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def log(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.drain()

    def drain(self) -> None:
        """Wait until every line the process wrote has been read (after it exited)."""
        with self._cond:
            self._cond.wait_for(lambda: self._ended, timeout=WAIT)

    def __enter__(self) -> BootstrapProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------ identities


@dataclass
class Identity:
    """A key and its certificate, written as PEM files for `requests`' cert=(cert, key)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    cert_file: Path
    key_file: Path

    @property
    def files(self) -> tuple[str, str]:
        return str(self.cert_file), str(self.key_file)

    @property
    def spki_sha256(self) -> bytes:
        return hashlib.sha256(spki_der(self.cert)).digest()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def self_signed(directory: Path, cn: str, *, days: int = 1) -> Identity:
    """A self-signed client certificate, like an owner's (already expired when `days` < 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    not_after = now + timedelta(days=days)
    cert = (
        x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now - timedelta(minutes=5), not_after - timedelta(days=1)))
        .not_valid_after(not_after).sign(key, hashes.SHA256())
    )
    return _write(directory, cn, key, cert)


def _write(directory: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> Identity:
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Identity(key, cert, cert_file, key_file)


class LocalCa:
    """A one-level test CA that signs CSRs, copying their subject and SANs."""

    def __init__(self, directory: Path, cn: str = "Owner Test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_file = directory / "ca.pem"
        self.cert_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def sign(
        self, csr_pem: str, *, not_before: datetime | None = None, not_after: datetime | None = None
    ) -> x509.Certificate:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        assert csr.is_signature_valid
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.cert.subject)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(minutes=5))
            .not_valid_after(not_after or now + timedelta(days=10))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            builder = builder.add_extension(san.value, critical=False)
        except x509.ExtensionNotFound:
            pass
        return builder.sign(self.key, hashes.SHA256())

    def chain_pem(self, leaf: x509.Certificate) -> str:
        pem = serialization.Encoding.PEM
        return (leaf.public_bytes(pem) + self.cert.public_bytes(pem)).decode()


def sans_for_localhost() -> list[str]:
    return ["localhost", "127.0.0.1"]


# ------------------------------------------------------------------------------------------------ calls


def call(
    method: str, url: str, *, identity: Identity | None = None, json: Any = None, **kwargs: Any
) -> requests.Response:
    """One HTTPS call to the bootstrap server (certificate checked by the tests through attestation, not by TLS)."""
    return requests.request(
        method, url, json=json, verify=False, cert=identity.files if identity else None, timeout=WAIT, **kwargs
    )


def served_certificate(port: int) -> x509.Certificate:
    """The certificate the server at 127.0.0.1:port presents in its TLS handshake."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def verify_fresh_attestation(answer: dict[str, Any], sim: SimulatedTee, spki: bytes, nonce: bytes) -> None:
    """The /attestation answer verifies with the simulated roots, names `spki` and carries `nonce`."""
    collateral = answer.get("collateral")
    verify_claims_evidence(
        base64.b64decode(answer["evidence"]), base64.b64decode(answer["claims"]), spki=spki, nonce=nonce,
        now=datetime.now(UTC), roots=sim.roots(), collateral=collateral,
    )


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
