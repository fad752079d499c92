"""`ckms attestation`: verify TEE evidence offline, produce simulated evidence, inspect RA-TLS certificates.

Verification trusts only the pinned vendor roots unless `--trusted-root` names another one (a simulated TEE's
root, for instance), and then the claims say `simulated: true`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attestation.errors import AttestationError, VerificationError
from attestation.ratls import read_certificate
from attestation.roots import AMD_PRODUCTS, AmdRoots, TrustedRoots
from attestation.tee.simulated import KINDS, SimulatedTee
from attestation.verify import Policy, detect_kind, verify_evidence
from attestation.verify.claims import Claims
from ckms.errors import CliError


def load_evidence(data: bytes) -> bytes:
    """Evidence as stored: raw bytes, hex text (with or without 0x) or base64 text (Nitro documents)."""
    text = data.strip()
    if text and all(c in b"0123456789abcdefABCDEFx\r\n\t " for c in text):
        compact = b"".join(text.split())
        if compact[:2] in (b"0x", b"0X"):
            compact = compact[2:]
        try:
            return binascii.unhexlify(compact)
        except binascii.Error:
            pass
    try:
        decoded = base64.b64decode(text, validate=True)
        if decoded:
            return decoded
    except (binascii.Error, ValueError):
        pass
    return data


def _hex(value: str, option: str) -> bytes:
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise CliError(f"{option}: not hexadecimal") from None


def _roots_for(kind: str, root_file: Path) -> TrustedRoots:
    try:
        root = x509.load_pem_x509_certificate(root_file.read_bytes())
    except (OSError, ValueError):
        try:
            root = x509.load_der_x509_certificate(root_file.read_bytes())
        except (OSError, ValueError) as exc:
            raise CliError(f"--trusted-root {root_file}: not a PEM or DER certificate ({exc})") from None
    if kind in ("sgx", "tdx"):
        return TrustedRoots(intel=(root,))
    if kind == "sev-snp":
        return TrustedRoots(amd=tuple((product, AmdRoots(ark=root)) for product in AMD_PRODUCTS))
    return TrustedRoots(nitro=(root,))


def _print_claims(claims: Claims, as_json: bool) -> None:
    data = claims.as_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if value in (None, [], ()):
            continue
        click.echo(f"{key}: {value}")


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def attestation() -> None:
    """Verify TEE evidence, simulate a TEE, inspect RA-TLS certificates."""


@attestation.command("verify")
@click.option("--evidence", "evidence_file", required=True, type=_FILE,
              help="SGX/TDX quote, SEV-SNP report (optionally with its certificate table) or Nitro document")
@click.option("--collateral", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Intel QuoteCollateralV3 JSON (SGX/TDX)")
@click.option("--vcek", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="VCEK or VLEK certificate of an SEV-SNP report (DER or PEM)")
@click.option("--cert-chain", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SEV-SNP ASK/ASVK then ARK, PEM (AMD KDS order)")
@click.option("--trusted-root", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="trust this root instead of the pinned vendor roots (e.g. a simulated TEE)")
@click.option("--at", "at", metavar="ISO8601", help="verify at this time instead of now (e.g. 2025-06-25T00:00:00Z)")
@click.option("--expected-measurement", multiple=True, metavar="HEX",
              help="accepted MRENCLAVE / MRTD / MEASUREMENT / PCR0 (repeatable)")
@click.option("--expected-report-data", metavar="HEX", help="the exact report data (64 bytes) the evidence must carry")
@click.option("--allow-debug", is_flag=True, help="accept a debug enclave / guest (refused by default)")
@click.option("--json", "as_json", is_flag=True, help="print the claims as JSON")
def verify_cmd(
    evidence_file: Path,
    collateral: Path | None,
    vcek: Path | None,
    cert_chain: Path | None,
    trusted_root: Path | None,
    at: str | None,
    expected_measurement: tuple[str, ...],
    expected_report_data: str | None,
    allow_debug: bool,
    as_json: bool,
) -> None:
    """Verify evidence against the vendor roots and print its claims; exit 1 naming the failed check."""
    evidence = load_evidence(evidence_file.read_bytes())
    now = datetime.now(UTC)
    if at:
        try:
            now = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise CliError(f"--at {at!r}: not an ISO 8601 time") from None
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
    policy = Policy(
        measurements=tuple(_hex(m, "--expected-measurement") for m in expected_measurement),
        report_data=_hex(expected_report_data, "--expected-report-data") if expected_report_data else None,
        allow_debug=allow_debug,
    )
    try:
        kind = detect_kind(evidence)
        roots = _roots_for(kind, trusted_root) if trusted_root else None
        claims = verify_evidence(
            evidence,
            now=now,
            policy=policy,
            roots=roots,
            collateral=collateral.read_text() if collateral else None,
            vcek=vcek.read_bytes() if vcek else None,
            cert_chain=cert_chain.read_bytes() if cert_chain else None,
        )
    except VerificationError as exc:
        raise CliError(f"verification failed: check {exc.check}: {exc.message}") from None
    except AttestationError as exc:
        raise CliError(f"verification failed: {exc}") from None
    _print_claims(claims, as_json)


@attestation.command("simulate")
@click.option("--tee", "kind", required=True, type=click.Choice(KINDS), help="the kind of evidence to produce")
@click.option("--sim-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="directory of the simulated vendor PKI (created once, then reused)")
@click.option("--report-data", required=True, metavar="HEX", help="report data to bind (up to 64 bytes)")
@click.option("--measurement", metavar="HEX", help="the simulated guest's measurement (32 bytes SGX, 48 TDX/SNP)")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="where to write the evidence")
@click.option("--collateral-out", type=click.Path(dir_okay=False, path_type=Path),
              help="where to write the Intel collateral (SGX/TDX)")
def simulate_cmd(kind: str, sim_dir: Path, report_data: str, measurement: str | None, out: Path,
                 collateral_out: Path | None) -> None:
    """Write evidence from a simulated TEE and print the path of its simulated root."""
    data = _hex(report_data, "--report-data")
    try:
        tee = SimulatedTee(sim_dir, kind, measurement=_hex(measurement, "--measurement") if measurement else None)
        evidence = tee.quote(data)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    out.write_bytes(evidence.data)
    if collateral_out is not None:
        if evidence.collateral is None:
            raise CliError(f"{kind} evidence has no collateral (SEV-SNP evidence carries its certificates)")
        collateral_out.write_text(evidence.collateral)
    click.echo(str(tee.root_path()))


@attestation.group("ratls")
def ratls() -> None:
    """RA-TLS certificates (TEE evidence inside an X.509 certificate)."""


@ratls.command("inspect")
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM or DER certificate")
def ratls_inspect(cert_file: Path) -> None:
    """Print what an RA-TLS certificate carries (without verifying it)."""
    raw = cert_file.read_bytes()
    try:
        cert = x509.load_pem_x509_certificate(raw) if b"-----BEGIN" in raw else x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise CliError(f"{cert_file}: not an X.509 certificate ({exc})") from None
    try:
        info = read_certificate(cert)
    except AttestationError as exc:
        raise CliError(f"{cert_file}: {exc}") from None
    click.echo(f"subject: {cert.subject.rfc4514_string()}")
    click.echo(f"valid: {cert.not_valid_before_utc.isoformat()} .. {cert.not_valid_after_utc.isoformat()}")
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    click.echo(f"public key (SPKI DER, SHA-256): {hashlib.sha256(spki).hexdigest()}")
    for key, value in _inspect_fields(info).items():
        click.echo(f"{key}: {value}")


def _inspect_fields(info: object) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("form", "oid"):
        if getattr(info, name, None) is not None:
            out[name] = str(getattr(info, name))
    evidence = getattr(info, "evidence", None)
    if isinstance(evidence, bytes | bytearray):
        try:
            out["evidence"] = f"{detect_kind(bytes(evidence))}, {len(evidence)} bytes"
        except AttestationError:
            out["evidence"] = f"{len(evidence)} bytes (unknown kind)"
    claims = getattr(info, "claims", None)
    if claims:
        out["claims"] = ", ".join(f"{k}={v.hex() if isinstance(v, bytes) else v}" for k, v in claims.items())
    expected = getattr(info, "expected_report_data", None)
    if isinstance(expected, bytes | bytearray):
        out["report data the evidence must carry"] = bytes(expected).hex()
    return out
