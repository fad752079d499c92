"""`ckms verify`: attest the running KMS (its `/tee/attestation`) and pin its certificate for later calls.

Unlike Cosmian's `ckms verify` (cosmian-reference.md §3.3), the evidence is bound to the key of the very TLS
connection it arrives on (claims `pubkey-hash`), carries our fresh nonce, and is appraised against expected values
for its TEE type; the TLS certificate itself is checked first, against the pin the configuration already holds,
else against a CA chain, or not at all when `--accept-invalid-certs` says so (the attestation then is what makes
the certificate trustworthy, and it is what gets pinned).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ckms.attested import Checklist, StepFailed, attest_server, expected_and_trust, load_config_or_new, save_pin
from ckms.context import CliContext, pass_cli
from ckms.errors import ClientError, CliError
from ckms.pinning import CertificateRejected, base_url, fetch_certificate, fingerprint, tls_context

ATTESTATION_PATH = "/tee/attestation"
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("verify")
@click.option("--url", metavar="URL", help="the KMS to verify (default: --url before the command, else kms_server_url)")
@click.option("--measurements", type=_FILE, help="measurements.json of the appliance image (expected values)")
@click.option("--expected-measurement", multiple=True, metavar="HEX",
              help="an accepted measurement for whatever TEE type the server has (repeatable)")
@click.option("--trust-simulated-root", "simulated_roots", multiple=True, type=_FILE, metavar="PEM",
              help="trust this simulated TEE root (Intel-style root or AMD-style ARK) instead of the vendor roots")
@click.option("--accept-invalid-certs", is_flag=True,
              help="do not check the TLS certificate (neither pin nor chain): the attestation alone vouches for it")
@click.option("--ca-cert", type=_FILE, metavar="PEM",
              help="check the TLS chain against this CA instead of the system roots (when nothing is pinned)")
@click.option("--no-save", is_flag=True, help="do not pin the verified certificate in the configuration")
@click.option("--json", "as_json", is_flag=True, help="print the checks as a JSON list")
@pass_cli
@click.pass_context
def verify(ctx: click.Context, obj: CliContext, **opts: Any) -> None:
    """Check that the KMS runs the expected code in a genuine TEE and holds the key of its TLS certificate."""
    checklist = Checklist(opts["as_json"])
    try:
        _verify(checklist, obj, opts)
    except StepFailed:
        checklist.finish()
        ctx.exit(1)
    checklist.finish()


def _verify(checklist: Checklist, obj: CliContext, opts: dict[str, Any]) -> None:
    try:
        conf_path, cfg = load_config_or_new(obj.conf)
        raw_url = opts["url"] or obj.url or (cfg.kms_server_url if cfg is not None else None)
        if not raw_url:
            raise CliError("no KMS URL: give --url https://host:port")
        url = base_url(raw_url)
    except CliError as exc:
        checklist.fail("input", exc.message)
    expected, trust = expected_and_trust(
        checklist,
        measurements=opts["measurements"],
        expected_measurement=opts["expected_measurement"],
        simulated_roots=opts["simulated_roots"],
        cfg=cfg,
        conf_path=conf_path,
    )
    pkcs12 = cfg.ssl_client_pkcs12_path if cfg is not None else None
    password = cfg.ssl_client_pkcs12_password if cfg is not None else None
    try:
        plain = tls_context(client_pkcs12=Path(pkcs12) if pkcs12 else None, client_password=password)
    except CliError as exc:
        checklist.fail("input", exc.message)
    headers = {"Authorization": f"Bearer {cfg.kms_access_token}"} if cfg is not None and cfg.kms_access_token else {}

    cert_der = _check_tls(checklist, url, opts, obj, cfg, plain, pkcs12, password)
    client, _fresh = attest_server(
        checklist, url=url, path=ATTESTATION_PATH, context=plain, expected=expected, trust=trust,
        cert_der=cert_der, headers=headers, verify_certificate=False,
    )
    client.close()
    if opts["no_save"]:
        checklist.skip("config", "configuration not updated (--no-save)")
        return
    pem = x509.load_der_x509_certificate(cert_der).public_bytes(serialization.Encoding.PEM).decode()
    try:
        save_pin(conf_path, cfg, url, pem)
    except OSError as exc:
        checklist.fail("config", f"cannot write {conf_path}: {exc.strerror or exc}")
    checklist.ok("config", f"configuration {conf_path} updated: further ckms calls pin this certificate")


def _check_tls(
    checklist: Checklist, url: str, opts: dict[str, Any], obj: CliContext, cfg: Any, plain: Any,
    pkcs12: str | None, password: str | None,
) -> bytes:
    """The server's certificate, checked by pin, by chain, or (asked for) not at all.

    The flag skips the pin too (that is how a re-provisioned KMS gets re-attested and re-pinned); the
    configuration's accept_invalid_certs only skips the chain, a pin it holds is still enforced."""
    flag = opts["accept_invalid_certs"] or obj.accept_invalid_certs
    pinned = cfg.pinned_cert if cfg is not None and not flag else None
    accept_invalid = flag or (cfg is not None and cfg.accept_invalid_certs and not pinned)
    try:
        if accept_invalid:
            der = fetch_certificate(url, plain)
            why = "--accept-invalid-certs" if flag else "accept_invalid_certs in the configuration"
            checklist.skip("tls-chain", f"TLS certificate not checked ({why}), sha256 {fingerprint(der)}")
            return der
        if pinned:
            try:
                pin = x509.load_pem_x509_certificate(pinned.encode()).public_bytes(serialization.Encoding.DER)
            except ValueError as exc:
                checklist.fail("tls-pin", f"verified_cert in the configuration is not a PEM certificate ({exc})")
            der = fetch_certificate(url, plain)
            if der != pin:
                checklist.fail(
                    "tls-pin",
                    f"the server presents sha256 {fingerprint(der)}, the configuration pins sha256 {fingerprint(pin)} "
                    "(if the KMS was re-provisioned, re-attest with --accept-invalid-certs)",
                )
            checklist.ok("tls-pin", f"TLS certificate pinned (verified_cert, sha256 {fingerprint(der)})")
            return der
        verifying = tls_context(
            verify=True, cafile=opts["ca_cert"], client_pkcs12=Path(pkcs12) if pkcs12 else None,
            client_password=password,
        )
        der = fetch_certificate(url, verifying)
    except CertificateRejected as exc:
        checklist.fail("tls-chain", exc.message)
    except ClientError as exc:
        checklist.fail("tls-connect", exc.message)
    except CliError as exc:
        checklist.fail("input", exc.message)
    roots = f"CA {opts['ca_cert']}" if opts["ca_cert"] else "the system roots"
    checklist.ok("tls-chain", f"TLS certificate chain verifies against {roots} (sha256 {fingerprint(der)})")
    return der
