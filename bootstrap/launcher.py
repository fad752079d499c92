"""`kms-server`: start the KMS directly, or through the bootstrap server (`--use-bootstrap-server`).

Without --use-bootstrap-server this is exactly `python -m kms.server.main` (kms.server.main.serve).

With it (spec/bootstrap.md, bootstrap/PROTOCOL.md):
1. Build the TEE provider (--tee simulated from --tee-sim-*, or a real one: auto-detected or by name) and derive
   this boot's keys from its sealing key (bootstrap.keys).
2. If `<root-data-path>/bootstrap/sealed-config` exists and opens with the derived key, the same image on the same
   platform has been provisioned before: log it and start the KMS at once with that configuration (step 5), no
   bootstrap server. If it exists but does not open (another image, measurement or platform, or an altered file),
   log that and fall back to bootstrap mode; a new provisioning overwrites it.
3. Bootstrap mode: build the RA-TLS certificate of the bootstrap key, resolve the owner binding (flag and/or the
   TEE's HOST_DATA / MRCONFIGID read from that certificate's evidence), serve the bootstrap app over HTTPS on
   --hostname:--bootstrap-server-port until POST /start (or SIGTERM/SIGINT: then exit without starting anything).
4. /start seals the provisioned configuration (before it answers), the response is sent, the bootstrap server
   stops and releases its port (it may be the same port as the KMS's: one after the other).
5. Handover, in this same process: the database options come from the provisioned configuration; the certificate
   chain and the API private key (derived from sk, or the PKCS#12's) are written as PEM into a private temporary
   directory (0700, files 0600) for gunicorn's workers to load, and kms.server.main.serve starts the KMS exactly as
   a direct start does, with /tee/attestation and /tee/certificate bound to that key. Inside a confidential VM that
   directory is in the TEE's own memory or encrypted disk, like the rest of the guest; it is removed when the KMS
   stops. clear_database applies only to the first start after a provisioning, never after an unseal. With
   --socket-server-start the KMIP socket listener gets the same chain and key (as a PKCS#12 in that directory).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import secrets
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import NoReturn

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from attestation.errors import AttestationError
from attestation.ratls import read_certificate
from attestation.tee import TeeProvider
from bootstrap.app import BootstrapService, create_app
from bootstrap.certs import bootstrap_certificate, bootstrap_sans
from bootstrap.https import BootstrapHttpsServer
from bootstrap.keys import BootstrapKeys, keys_from_provider
from bootstrap.owner import OwnerConfigError, resolve_owner
from bootstrap.provisioned import DatabaseSettings, ProvisionedConfig
from bootstrap.sealing import SealedConfigError, read_sealed, sealed_path, write_sealed
from kms.config import ConfigError, ServerConfig, validate
from kms.server.main import database_error, load_or_exit, serve, setup_logging
from kms.server.tee_routes import build_provider, tee_label

log = logging.getLogger("kms.bootstrap")

UNSEAL_FAILED = "the sealed configuration cannot be unsealed (different image or platform): bootstrap mode"


def main(argv: Sequence[str] | None = None) -> None:
    """The `kms-server` console script."""
    setup_logging(argv)
    config = load_or_exit(argv)
    if not config.use_bootstrap_server:
        serve(config)
        return
    run_bootstrap(config)


def _fail(message: object) -> NoReturn:
    print(f"kms-server: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def run_bootstrap(config: ServerConfig) -> None:
    """Steps 1 to 5 of the module docstring."""
    try:
        provider = build_provider(config)
        keys = keys_from_provider(provider)
    except (AttestationError, OSError, ValueError) as exc:
        _fail(f"--tee {config.tee}: {exc}")
    path = sealed_path(config.root_data_path)
    provisioned = _unseal(path, keys)
    if provisioned is not None:
        log.info(
            "the sealed configuration was unsealed (%s): starting the KMS without a new provisioning",
            provisioned.database.describe(),
        )
        handover(config, provisioned, keys, provider, first_start=False)
        return
    provisioned = serve_bootstrap(config, provider, keys, path)
    if provisioned is not None:
        handover(config, provisioned, keys, provider, first_start=True)


def _unseal(path: Path, keys: BootstrapKeys) -> ProvisionedConfig | None:
    """The sealed configuration when there is one and it opens; None (logged) otherwise."""
    if not keys.sealed:
        if path.exists():
            log.warning("a sealed configuration exists but this TEE has no sealing key to open it: bootstrap mode")
        return None
    try:
        plaintext = read_sealed(path, keys.seal_key)
        if plaintext is None:
            log.info("no sealed configuration: bootstrap mode")
            return None
        return ProvisionedConfig.from_bytes(plaintext)
    except SealedConfigError as exc:
        log.warning("%s (%s)", UNSEAL_FAILED, exc)
        return None


def _sealer(path: Path, keys: BootstrapKeys) -> Callable[[ProvisionedConfig], None]:
    def seal(provisioned: ProvisionedConfig) -> None:
        if not keys.sealed:
            log.warning("no TEE sealing key: the configuration is not sealed; a restart needs a new provisioning")
            return
        write_sealed(path, keys.seal_key, provisioned.to_bytes())
        log.info("configuration sealed to %s", path)

    return seal


def _database_checker(config: ServerConfig) -> Callable[[DatabaseSettings], str | None]:
    """Why the KMS could not start on these settings (the configuration rules of kms.config, then opening the
    database, never clearing it), or None: checked at POST /database, so that a configuration that cannot work is
    refused with a 400 instead of being sealed and failing at every boot."""

    def check(settings: DatabaseSettings) -> str | None:
        trial = dataclasses.replace(config)
        settings.apply_to(trial, clear=False)
        try:
            validate(trial)
        except ConfigError as exc:
            return str(exc)
        problem = database_error(trial)
        if problem is None or settings.database_type.startswith("sqlite"):
            return problem
        return f"the {settings.database_type} database does not answer"  # a server's error could quote its URL

    return check


def serve_bootstrap(
    config: ServerConfig, provider: TeeProvider, keys: BootstrapKeys, path: Path
) -> ProvisionedConfig | None:
    """Run the bootstrap server until /start (the provisioned configuration) or a signal (None)."""
    label = tee_label(provider)
    try:
        certificate = bootstrap_certificate(
            keys.bootstrap_key, provider, label, subject=config.bootstrap_server_subject,
            days=config.bootstrap_server_expiration_days, sans=bootstrap_sans(config.hostname),
        )
        owner, owner_source = resolve_owner(config.bootstrap_owner_key_sha256, read_certificate(certificate).evidence)
    except (AttestationError, OSError, ValueError, OwnerConfigError) as exc:
        _fail(f"cannot prepare the bootstrap server: {exc}")
    service = BootstrapService(
        provider=provider,
        tee=label,
        keys=keys,
        certificate=certificate,
        owner=owner,
        seal=_sealer(path, keys),
        check_database=_database_checker(config),
    )
    try:
        server = BootstrapHttpsServer(
            config.hostname, config.bootstrap_server_port, create_app(service), certificate, keys.bootstrap_key
        )
    except OSError as exc:
        _fail(f"the bootstrap server cannot listen on {config.hostname}:{config.bootstrap_server_port}: {exc}")

    def on_signal(signum: int, frame: FrameType | None) -> None:
        server.request_stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=server.serve_forever, name="bootstrap-https", daemon=True)
    thread.start()
    fingerprint = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    log.info(
        "bootstrap server listening on https://%s:%d (tee %s, owner binding: %s, certificate SHA-256 %s)",
        config.hostname, config.bootstrap_server_port, label,
        f"key {owner.hex()} from {owner_source}" if owner else "none", fingerprint,
    )
    try:
        reason = server.wait_for_stop()
    finally:
        server.stop()
        thread.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if reason != "started":
        log.info("bootstrap server stopped (%s) before /start: exiting", reason)
        return None
    log.info("bootstrap server stopped: handing over to the KMS")
    return service.provisioned


def handover(
    config: ServerConfig,
    provisioned: ProvisionedConfig,
    keys: BootstrapKeys,
    provider: TeeProvider,
    *,
    first_start: bool,
) -> None:
    """Start the KMS with the provisioned configuration (step 5 of the module docstring)."""
    provisioned.database.apply_to(config, clear=first_start)
    try:
        validate(config)
    except ConfigError as exc:  # e.g. a configuration sealed by an older build that this one no longer accepts
        _fail(f"the provisioned configuration is not valid: {exc}")
    tls = provisioned.tls
    if tls.derived_key:
        key_pem = keys.api_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    else:
        log.warning("the KMS's TLS key came in a PKCS#12: it existed outside the TEE")
        key_pem = (tls.key_pem or "").encode()
    _warn_if_expired(tls.chain_pem)
    tmp = tempfile.TemporaryDirectory(prefix="kms-bootstrap-tls-")
    os.chmod(tmp.name, 0o700)
    cert_file = Path(tmp.name) / "cert.pem"
    key_file = Path(tmp.name) / "key.pem"
    cert_file.write_text(tls.chain_pem)
    _write_private(key_file, key_pem)
    if config.socket_server_start:
        _listener_pkcs12(config, tls.chain_pem, key_pem, Path(tmp.name))
    del key_pem
    arbiter = os.getpid()
    try:
        serve(config, (str(cert_file), str(key_file)), tee_provider=provider)
    finally:
        # serve returns in gunicorn's workers too (forks of this process): only this process removes the files.
        if os.getpid() == arbiter:
            tmp.cleanup()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _listener_pkcs12(config: ServerConfig, chain_pem: str, key_pem: bytes, directory: Path) -> None:
    """The KMIP socket listener (kms.server.socket_server) reads its TLS identity from --https-p12-file: give it
    the provisioned chain and key as a PKCS#12 in the private directory, under a random password that exists only
    in memory (the listener receives the configuration over a pipe, never in argv or the environment)."""
    chain = x509.load_pem_x509_certificates(chain_pem.encode())
    key = serialization.load_pem_private_key(key_pem, password=None)
    password = secrets.token_urlsafe(32)
    data = pkcs12.serialize_key_and_certificates(
        b"kms", key, chain[0], chain[1:] or None,  # type: ignore[arg-type]
        serialization.BestAvailableEncryption(password.encode()),
    )
    path = directory / "socket-listener.p12"
    _write_private(path, data)
    config.https_p12_file, config.https_p12_password = str(path), password


def _warn_if_expired(chain_pem: str) -> None:
    leaf = x509.load_pem_x509_certificates(chain_pem.encode())[0]
    if leaf.not_valid_after_utc < datetime.now(UTC):
        log.warning("the provisioned API certificate expired on %s: clients will refuse it; provision a new one",
                    leaf.not_valid_after_utc.isoformat())
