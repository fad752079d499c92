"""One entry point: evidence bytes in, verified `Claims` out, or a `VerificationError` naming the failed check.

The evidence kind is read from the bytes (SGX quote v3, TDX quote v4/v5, SEV-SNP report, Nitro COSE_Sign1
document). `now` is always explicit. Only the pinned vendor roots are trusted unless `roots` says otherwise.
"""

from __future__ import annotations

from datetime import datetime

from attestation.errors import FormatError, VerificationError
from attestation.roots import TrustedRoots, pinned
from attestation.verify.claims import Claims
from attestation.verify.policy import Policy, SnpTcb

__all__ = ["Claims", "Policy", "SnpTcb", "TrustedRoots", "detect_kind", "verify_evidence"]

SNP_REPORT_SIZE = 0x4A0


def detect_kind(evidence: bytes) -> str:
    """'sgx', 'tdx', 'sev-snp' or 'nitro', from the first bytes (FormatError if none fits)."""
    if len(evidence) >= 1 and evidence[0] in (0x84, 0xD2):  # CBOR array(4), or tag 18 (COSE_Sign1)
        return "nitro"
    # SNP first: its u32 VERSION (2..5) leaves bytes 2-3 zero, where every Intel quote has att_key_type 2; the
    # other way round a v3 report with GUEST_SVN 0 would pass for an SGX quote header.
    if len(evidence) >= SNP_REPORT_SIZE and int.from_bytes(evidence[0:4], "little") in (2, 3, 4, 5):
        return "sev-snp"
    if len(evidence) >= 8:
        version = int.from_bytes(evidence[0:2], "little")
        tee_type = int.from_bytes(evidence[4:8], "little")
        if version in (3, 5) and tee_type == 0x00000000:  # v5 can carry an SGX enclave body too
            return "sgx"
        if version in (4, 5) and tee_type == 0x00000081:
            return "tdx"
    raise FormatError("evidence", "not an SGX/TDX quote, SEV-SNP report or Nitro attestation document")


def verify_evidence(
    evidence: bytes,
    *,
    now: datetime,
    policy: Policy | None = None,
    roots: TrustedRoots | None = None,
    collateral: str | bytes | None = None,
    vcek: bytes | None = None,
    cert_chain: bytes | None = None,
) -> Claims:
    """Verify `evidence` at time `now`.

    collateral: Intel QuoteCollateralV3 JSON (SGX/TDX); required for a TCB verdict.
    vcek: the VCEK or VLEK certificate (DER or PEM) for an SEV-SNP report, unless `evidence` is an extended report
        (report followed by its certificate table).
    cert_chain: PEM ASK/ASVK then ARK (KDS order) when not using the pinned ones.
    """
    if now.tzinfo is None:
        raise VerificationError("time", "`now` must be timezone-aware")
    policy = policy or Policy()
    roots = roots or pinned()
    kind = detect_kind(evidence)
    if kind in ("sgx", "tdx"):
        from attestation.verify.intel import verify_intel

        return verify_intel(evidence, now=now, policy=policy, roots=roots, collateral=collateral)
    if kind == "sev-snp":
        from attestation.verify.amd import verify_snp

        return verify_snp(evidence, now=now, policy=policy, roots=roots, vcek=vcek, cert_chain=cert_chain)
    from attestation.verify.nitro import verify_nitro

    return verify_nitro(evidence, now=now, policy=policy, roots=roots)
