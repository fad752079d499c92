"""Appraising a server's evidence for `ckms bootstrap start` and `ckms verify`, and the checklist they print.

Both commands verify the same things (spec/bootstrap.md §6): the vendor chain and signature, the binding of the
evidence to the TLS key, the caller's fresh nonce, the expected measurement for the TEE type, debug refused, the
TCB. The attestation library does the verification and names the failed check; this module chooses the trust
roots and the policy for the evidence's TEE type, adds the checks the library's policy cannot express, and turns
verified claims into the `[ OK ]` lines a person reads before trusting the server with anything.

The steps both commands share live here too: choosing the expected values and roots, attesting a server over a
connection pinned to the certificate it presented (`attest_server`), and saving the pin in the configuration.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import secrets
import ssl
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from cryptography import x509

from attestation.errors import AttestationError, VerificationError
from attestation.ratls import read_certificate, spki_der, verify_certificate, verify_claims_evidence
from attestation.roots import AMD_PRODUCTS, AmdRoots, TrustedRoots
from attestation.verify import Claims, detect_kind
from ckms import config as config_mod
from ckms.errors import ClientError, CliError
from ckms.measurements import Expectation, ExpectedValues, MeasurementsError, select, simulated_root_paths
from ckms.pinning import PinMismatch, PinnedClient

NONCE_SIZE = 32

# ---------------------------------------------------------------------------------------------- checklist


@dataclasses.dataclass(frozen=True)
class Step:
    status: str  # "OK" | "FAIL" | "SKIP"
    check: str  # stable name of the check or step (the library's check names for verification failures)
    message: str

    def line(self) -> str:
        if self.status == "FAIL":
            return f"[FAIL] {self.check}: {self.message}"
        return f"[{' OK ' if self.status == 'OK' else 'SKIP'}] {self.message}"


class StepFailed(Exception):
    """Raised by `Checklist.fail`: the command stops there (the FAIL line is already recorded)."""


class Checklist:
    """One line per step or check; printed as it happens (text) or as one JSON list at the end (`--json`).

    Lines appear as they happen so that a person watching a slow step (the KMS starting) sees where it is.
    """

    def __init__(self, as_json: bool, echo: Callable[[str], None] = click.echo) -> None:
        self.as_json = as_json
        self.steps: list[Step] = []
        self._echo = echo

    def _add(self, status: str, check: str, message: str) -> None:
        step = Step(status, check, " ".join(message.split()))
        self.steps.append(step)
        if not self.as_json:
            self._echo(step.line())

    def ok(self, check: str, message: str) -> None:
        self._add("OK", check, message)

    def skip(self, check: str, message: str) -> None:
        self._add("SKIP", check, message)

    def fail(self, check: str, message: str) -> NoReturn:
        self._add("FAIL", check, message)
        raise StepFailed(check)

    def failed(self) -> bool:
        return any(s.status == "FAIL" for s in self.steps)

    def finish(self) -> None:
        if self.as_json:
            self._echo(json.dumps([dataclasses.asdict(s) for s in self.steps], indent=2))


# ---------------------------------------------------------------------------------------------- trust roots


@dataclasses.dataclass(frozen=True)
class Trust:
    """Which roots evidence may chain to: the pinned vendor roots, or only the simulated roots the user named.

    A simulated root is an Intel-style root (ECDSA, for SGX/TDX evidence) or an AMD-style ARK (RSA, for SEV-SNP);
    the kind of each certificate is read from its key, so one file may hold both.
    """

    simulated_roots: tuple[x509.Certificate, ...] = ()

    @property
    def simulated(self) -> bool:
        return bool(self.simulated_roots)

    def candidates(self, kind: str) -> list[TrustedRoots | None]:
        """The root sets to try for evidence of `kind` (None = the pinned vendor roots)."""
        if not self.simulated:
            return [None]
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if kind in ("sgx", "tdx"):
            intel = tuple(c for c in self.simulated_roots if isinstance(c.public_key(), ec.EllipticCurvePublicKey))
            if not intel:
                raise VerificationError(
                    "trusted-root", f"the simulated root holds no Intel-style (ECDSA) root for {kind} evidence"
                )
            return [TrustedRoots(intel=intel)]
        if kind == "sev-snp":
            arks = [c for c in self.simulated_roots if isinstance(c.public_key(), rsa.RSAPublicKey)]
            if not arks:
                raise VerificationError(
                    "trusted-root", "the simulated root holds no AMD-style ARK (RSA) for sev-snp evidence"
                )
            return [TrustedRoots(amd=tuple((p, AmdRoots(ark=ark)) for p in AMD_PRODUCTS)) for ark in arks]
        raise VerificationError("tee-type", f"{kind} evidence is not supported here")


def load_simulated_roots(paths: Sequence[Path]) -> Trust:
    """The certificates of `--trust-simulated-root` files (PEM, possibly several per file, or DER)."""
    certs: list[x509.Certificate] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read the simulated root {path}: {exc.strerror or exc}") from None
        try:
            certs += x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data else [
                x509.load_der_x509_certificate(data)
            ]
        except ValueError as exc:
            raise CliError(f"{path}: not a PEM or DER certificate ({exc})") from None
    return Trust(tuple(certs))


def _with_roots(trust: Trust, kind: str, verify: Callable[[TrustedRoots | None], Claims]) -> Claims:
    """Try each candidate root set; a chain that ends elsewhere moves on to the next, any other failure stops."""
    candidates = trust.candidates(kind)
    for i, roots in enumerate(candidates):
        try:
            return verify(roots)
        except VerificationError as exc:
            if exc.check not in ("ark", "pck-chain") or i == len(candidates) - 1:
                raise
    raise AssertionError("unreachable")  # candidates is never empty


def _named(check: str, exc: AttestationError) -> VerificationError:
    """A library format error as the check it fails, without repeating the check's name in the message."""
    field = getattr(exc, "field", None)
    message = getattr(exc, "message", None)
    return VerificationError(check, message if field == check and message else str(exc))


def _guard(fn: Callable[[], Claims]) -> Claims:
    """Library failures other than VerificationError (a malformed structure) as a named check."""
    try:
        return fn()
    except VerificationError:
        raise
    except AttestationError as exc:
        raise _named("evidence", exc) from None


# ---------------------------------------------------------------------------------------------- verification


@dataclasses.dataclass(frozen=True)
class Appraisal:
    claims: Claims
    expectation: Expectation
    extra: tuple[tuple[str, str], ...]  # checks done here beyond the library policy (check, message)


def appraise_certificate(
    cert_der: bytes,
    *,
    expected: ExpectedValues,
    trust: Trust,
    now: datetime,
    collateral: str | None,
) -> Appraisal:
    """Verify an RA-TLS certificate: self-signature and validity, binding of its evidence to its key, the
    evidence with the expected values of its TEE type. Raises VerificationError naming the failed check."""
    # The TEE type (hence the expected values) is read from the evidence before the library verifies it; the
    # self-signature is checked first anyway so a tampered certificate is reported as such, not as bad evidence.
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        cert.verify_directly_issued_by(cert)
    except Exception as exc:  # ValueError, InvalidSignature, TypeError (key type): all mean "not trustworthy"
        raise VerificationError("ratls-certificate", f"not a valid self-signed certificate ({exc!r})") from None
    try:
        found = read_certificate(cert)
    except AttestationError as exc:
        raise _named("ratls-extension", exc) from None
    try:
        kind = detect_kind(found.evidence)
    except AttestationError as exc:
        raise _named("ratls-evidence", exc) from None
    expectation = expected.for_evidence(kind, trust.simulated)
    policy = expectation.policy()
    claims = _with_roots(
        trust,
        kind,
        lambda roots: _guard(
            lambda: verify_certificate(cert, now=now, policy=policy, roots=roots, collateral=collateral)
        ),
    )
    return Appraisal(claims, expectation, tuple(expectation.check_claims(claims)))


@dataclasses.dataclass(frozen=True)
class Answer:
    """A `GET /attestation` / `GET /tee/attestation` answer (PROTOCOL.md)."""

    tee: str | None
    evidence: bytes
    claims: bytes
    collateral: str | None


def parse_answer(value: Any) -> Answer:
    """The attestation answer's fields (VerificationError("attestation-answer") when malformed)."""
    if not isinstance(value, Mapping):
        raise VerificationError("attestation-answer", "the answer is not a JSON object")
    fields: dict[str, bytes] = {}
    for name in ("evidence", "claims"):
        text = value.get(name)
        if not isinstance(text, str):
            raise VerificationError("attestation-answer", f"no {name!r} (base64)")
        try:
            fields[name] = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError("attestation-answer", f"{name!r} is not base64") from None
    collateral = value.get("collateral")
    if collateral is not None and not isinstance(collateral, str):
        collateral = json.dumps(collateral)  # an object instead of its JSON text: same content
    tee = value.get("tee")
    return Answer(tee if isinstance(tee, str) else None, fields["evidence"], fields["claims"], collateral)


def appraise_answer(
    answer: Answer,
    *,
    spki: bytes,
    nonce: bytes,
    expected: ExpectedValues,
    trust: Trust,
    now: datetime,
) -> Appraisal:
    """Verify fresh evidence: its claims name `spki` (the key of the TLS connection it came over) and carry our
    `nonce`, the evidence binds the claims and satisfies the expected values of its TEE type."""
    try:
        kind = detect_kind(answer.evidence)
    except AttestationError as exc:
        raise _named("ratls-evidence", exc) from None
    expectation = expected.for_evidence(kind, trust.simulated)
    policy = expectation.policy()
    claims = _with_roots(
        trust,
        kind,
        lambda roots: _guard(
            lambda: verify_claims_evidence(
                answer.evidence, answer.claims, spki=spki, now=now, policy=policy, roots=roots, nonce=nonce,
                collateral=answer.collateral,
            )
        ),
    )
    return Appraisal(claims, expectation, tuple(expectation.check_claims(claims)))


# ---------------------------------------------------------------------------------------------- output


def root_description(claims: Claims) -> str:
    if claims.simulated:
        return f"simulated root sha256 {claims.root_fingerprint[:16]}…"
    if claims.tee == "sev-snp":
        return f"AMD {claims.product or ''} ARK, pinned".replace("  ", " ")
    return "Intel SGX root CA, pinned"


def appraisal_lines(checklist: Checklist, appraisal: Appraisal, *, what: str) -> None:
    """The OK/SKIP lines of verified evidence. Only called once verification succeeded as a whole: until the
    signature is checked, no field of the evidence means anything, so nothing is reported as OK before that."""
    c, e = appraisal.claims, appraisal.expectation
    kind = f"simulated {c.tee}" if c.simulated else c.tee
    checklist.ok("evidence-chain", f"{what}: {kind} evidence signature and vendor chain ({root_description(c)})")
    checklist.ok("debug", f"{what}: debug disabled")
    count = len(e.measurements)
    checklist.ok(
        "measurement",
        f"{what}: measurement {c.measurement.hex()} is expected ({e.tee}, {count} accepted value{'s' * (count > 1)})",
    )
    if e.host_data is not None and c.tee == "sev-snp":
        checklist.ok("host-data", f"{what}: HOST_DATA {e.host_data.hex()}")
    if e.mr_config_id is not None and c.tee == "tdx":
        checklist.ok("mr-config-id", f"{what}: MRCONFIGID {e.mr_config_id.hex()}")
    if e.mrsigner is not None and c.tee == "sgx":
        checklist.ok("mrsigner", f"{what}: MRSIGNER {e.mrsigner.hex()}")
    for check, message in appraisal.extra:
        checklist.ok(check, f"{what}: {message}")
    if c.tcb_status is not None:
        advisories = f" (advisories: {', '.join(c.advisory_ids)})" if c.advisory_ids else ""
        checklist.ok("tcb", f"{what}: TCB status {c.tcb_status}{advisories}")
    elif c.tee == "sev-snp":
        checklist.skip(
            "tcb", f"{what}: TCB status (SEV-SNP has none; the reported TCB matches the VCEK, no minimum set)"
        )
    else:
        checklist.skip("tcb", f"{what}: TCB status (no collateral)")


def failure_message(exc: VerificationError, answer_tee: str | None, trust: Trust) -> str:
    """The library's message, with a hint when a simulated server meets the real roots (the usual first try)."""
    message = exc.message
    if answer_tee and answer_tee.startswith("simulated") and not trust.simulated and exc.check in (
        "ark", "pck-chain", "product", "ask", "tee-type"
    ):
        message += " (the server says its TEE is simulated: trust its root with --trust-simulated-root PEM)"
    return message


# ---------------------------------------------------------------------------------------------- shared steps


def load_config_or_new(conf: str | None) -> tuple[Path, config_mod.ClientConfig | None]:
    """The CLI configuration if it exists (bootstrap is usually the first command: the file may not yet)."""
    path, _explicit = config_mod.resolve_path(conf)
    if path.is_file():
        return path, config_mod.load(str(path))
    return path, None


def expected_and_trust(
    checklist: Checklist,
    *,
    measurements: Path | None,
    expected_measurement: tuple[str, ...],
    simulated_roots: tuple[Path, ...],
    cfg: config_mod.ClientConfig | None,
    conf_path: Path,
) -> tuple[ExpectedValues, Trust]:
    """Expected values and trust roots, each reported as a line (shared with `ckms verify`)."""
    tee_conf = cfg.tee_conf if cfg is not None else None
    try:
        expected = select(
            measurements_file=measurements,
            expected=expected_measurement,
            tee_conf=tee_conf,
            conf_dir=conf_path.parent,
            conf_name=str(conf_path),
        )
    except MeasurementsError as exc:
        checklist.fail("expected-values", exc.message)
    checklist.ok("expected-values", f"expected values from {expected.describe()}")
    try:
        paths = simulated_root_paths(simulated_roots, tee_conf, conf_path.parent)
        trust = load_simulated_roots(paths)
    except CliError as exc:
        checklist.fail("trusted-root", exc.message)
    if trust.simulated:
        names = ", ".join(str(p) for p in paths)
        checklist.ok("trusted-root", f"trusting only the simulated root(s) of {names}, not the vendor roots")
    else:
        checklist.ok("trusted-root", "trusting the pinned vendor roots (AMD ARKs, Intel SGX root CA)")
    return expected, trust


def attest_server(
    checklist: Checklist,
    *,
    url: str,
    path: str,
    context: ssl.SSLContext,
    expected: ExpectedValues,
    trust: Trust,
    cert_der: bytes,
    headers: dict[str, str] | None = None,
    verify_certificate: bool = True,
) -> tuple[PinnedClient, Appraisal]:
    """Fresh evidence for our nonce over a connection pinned to `cert_der`, verified; with `verify_certificate`
    the RA-TLS certificate itself is verified too (its Intel collateral, if any, comes with the answer).

    Returns the pinned client (for the calls that follow) and the appraisal of the fresh evidence."""
    client = PinnedClient(url, cert_der, context, headers)
    nonce = secrets.token_bytes(NONCE_SIZE)
    try:
        value = client.get(path, params={"nonce": nonce.hex()})
    except PinMismatch as exc:
        client.close()
        checklist.fail("tls-pin", f"GET {path}: {exc}")
    except ClientError as exc:
        client.close()
        checklist.fail("attestation", f"GET {path}: {exc.message}")
    cert = x509.load_der_x509_certificate(cert_der)
    spki = spki_der(cert)
    now = datetime.now(UTC)
    answer = None
    try:
        answer = parse_answer(value)
        if verify_certificate:
            cert_appraisal = appraise_certificate(
                cert_der, expected=expected, trust=trust, now=now, collateral=answer.collateral
            )
            appraisal_lines(checklist, cert_appraisal, what="RA-TLS certificate")
            checklist.ok("ratls-binding", "RA-TLS certificate: the evidence names this certificate's key")
        fresh = appraise_answer(answer, spki=spki, nonce=nonce, expected=expected, trust=trust, now=now)
    except VerificationError as exc:
        client.close()
        checklist.fail(exc.check, failure_message(exc, answer.tee if answer else None, trust))
    if verify_certificate:
        same = (
            fresh.claims.measurement == cert_appraisal.claims.measurement
            and fresh.claims.root_fingerprint == cert_appraisal.claims.root_fingerprint
            and fresh.claims.tee == cert_appraisal.claims.tee
        )
        if not same:
            client.close()
            checklist.fail("fresh-evidence", "the fresh evidence comes from another TEE than the certificate's")
        checklist.ok("ratls-nonce", f"fresh evidence (GET {path}) carries our {NONCE_SIZE}-byte nonce")
        checklist.ok(
            "ratls-binding", "fresh evidence: same key, same TEE and measurement as the certificate, all checks passed"
        )
    else:
        appraisal_lines(checklist, fresh, what="evidence")
        checklist.ok("ratls-nonce", f"nonce: the evidence answers our fresh {NONCE_SIZE}-byte nonce")
        checklist.ok("ratls-binding", "key binding: the evidence names the key of this TLS certificate")
    return client, fresh


def save_pin(path: Path, cfg: config_mod.ClientConfig | None, url: str, cert_pem: str) -> None:
    """kms_server_url and the pinned certificate in the CLI configuration (Cosmian keeps the pin in
    tee_conf.verified_cert: updated too when present, so neither copy goes stale)."""
    cfg = cfg or config_mod.ClientConfig(path=path)
    cfg.kms_server_url = url
    cfg.verified_cert = cert_pem
    if cfg.tee_conf and "verified_cert" in cfg.tee_conf:
        cfg.tee_conf["verified_cert"] = cert_pem
    cfg.save(path)
