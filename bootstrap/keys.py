"""The bootstrap key hierarchy (spec/bootstrap.md §1): everything derives from one TEE sealing key `sk`.

    sk           = provider.sealing_key(b"kms-bootstrap/v1")       bound to the platform and the launch measurement
    bootstrap    = P-256 scalar from HKDF-SHA256(sk, info="bootstrap-tls")   key of the bootstrap RA-TLS certificate
    api          = P-256 scalar from HKDF-SHA256(sk, info="api-tls")         key of the main KMS's TLS certificate
    config seal  = HKDF-SHA256(sk, info="config-seal"), 32 bytes             AES-256-GCM key of the sealed config

Why derive instead of generate: the same image on the same platform re-derives the same keys after a reboot, so the
provisioned API certificate stays valid and the sealed configuration opens without a new provisioning, while a
changed image (other measurement, other sk) can do neither. No private key is ever stored.

Scalars: HKDF output of 48 bytes reduced mod n (the P-256 group order). 16 bytes more than the order's size make
the reduction bias negligible (< 2^-128), as FIPS 186-5 A.4.1 does with its extra 64 bits; a zero scalar is
refused (it cannot happen in practice, and retrying would make the derivation depend on more than sk).

TDX has no hardware sealing key (SealingKeyUnavailableError): `sk` is then random for this boot. The keys still
never leave the TEE, but nothing survives a restart: the configuration is not sealed and a restart needs a new
provisioning. The launcher says so in the log.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from attestation.tee import TeeProvider
from attestation.tee.providers import SealingKeyUnavailableError

log = logging.getLogger("kms.bootstrap")

SEALING_LABEL = b"kms-bootstrap/v1"
SK_BYTES = 32
HKDF_SALT = b"zt-kms/bootstrap-keys/v1"
INFO_BOOTSTRAP_TLS = b"bootstrap-tls"
INFO_API_TLS = b"api-tls"
INFO_CONFIG_SEAL = b"config-seal"
# Order of the P-256 group (SEC 2 v2, secp256r1 n).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SCALAR_OKM_BYTES = 48


def _hkdf(sk: bytes, info: bytes, length: int) -> bytes:
    if len(sk) != SK_BYTES:
        raise ValueError(f"sk must be {SK_BYTES} bytes, not {len(sk)}")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=HKDF_SALT, info=info).derive(sk)


def scalar_from_okm(okm: bytes) -> int:
    """The P-256 private scalar of HKDF output: big-endian integer mod n; ValueError for zero."""
    scalar = int.from_bytes(okm, "big") % P256_ORDER
    if scalar == 0:
        raise ValueError("the derived P-256 scalar is zero")
    return scalar


def derive_p256_key(sk: bytes, info: bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key for `info`: HKDF-SHA256(sk, info) of 48 bytes, reduced mod n, zero refused."""
    return ec.derive_private_key(scalar_from_okm(_hkdf(sk, info, _SCALAR_OKM_BYTES)), ec.SECP256R1())


def derive_seal_key(sk: bytes) -> bytes:
    """The 32-byte AES-256-GCM key of the sealed configuration."""
    return _hkdf(sk, INFO_CONFIG_SEAL, 32)


@dataclasses.dataclass(frozen=True)
class BootstrapKeys:
    """The keys of one boot. `sealed` is False when sk is random (no TEE sealing key): nothing may be sealed then,
    since no later boot could open it."""

    bootstrap_key: ec.EllipticCurvePrivateKey
    api_key: ec.EllipticCurvePrivateKey
    seal_key: bytes
    sealed: bool

    def __repr__(self) -> str:  # never print key material, even in a debugger or a failed assertion
        return f"BootstrapKeys(sealed={self.sealed})"

    @classmethod
    def from_sk(cls, sk: bytes, *, sealed: bool) -> BootstrapKeys:
        return cls(
            bootstrap_key=derive_p256_key(sk, INFO_BOOTSTRAP_TLS),
            api_key=derive_p256_key(sk, INFO_API_TLS),
            seal_key=derive_seal_key(sk),
            sealed=sealed,
        )


def keys_from_provider(provider: TeeProvider) -> BootstrapKeys:
    """Derive this boot's keys from the provider's sealing key, or from a random sk when it has none (TDX)."""
    try:
        sk = provider.sealing_key(SEALING_LABEL)
    except SealingKeyUnavailableError as exc:
        log.warning(
            "this TEE (%s) offers no sealing key (%s): the bootstrap keys are random for this boot, the "
            "configuration will not be sealed, and a restart needs a new provisioning",
            provider.kind,
            exc,
        )
        return BootstrapKeys.from_sk(secrets.token_bytes(SK_BYTES), sealed=False)
    return BootstrapKeys.from_sk(sk, sealed=True)
