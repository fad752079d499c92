"""TEE attestation: evidence formats, verification against vendor roots, TEE providers, RA-TLS.

A standalone library (it imports nothing else of this project). Public entry points:

- `attestation.verify.verify_evidence(evidence, now=..., policy=...)` -> `Claims`, or raises `VerificationError`
  naming the failed check;
- `attestation.formats.*` to parse and serialise the raw evidence formats;
- `attestation.tee.detect()` / `attestation.tee.simulated.SimulatedTee` for producing evidence;
- `attestation.ratls` to build and verify RA-TLS certificates.
"""

from attestation.errors import AttestationError, FormatError, VerificationError

__all__ = ["AttestationError", "FormatError", "VerificationError"]
