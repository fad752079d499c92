"""Pinned vendor roots shipped with the package; anything else is trusted only when passed explicitly.

- Intel SGX Root CA (production), SHA-256 44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3
- AMD ARK/ASK for Milan, Genoa and Turin, and the Milan ASVK (VLEK intermediate)
- AWS Nitro Enclaves root G1, SHA-256 641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

_DIR = Path(__file__).resolve().parent
INTEL_SGX_ROOT_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
AWS_NITRO_ROOT_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
AMD_PRODUCTS = ("Milan", "Genoa", "Turin")


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _load(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((_DIR / name).read_bytes())


@dataclasses.dataclass(frozen=True)
class AmdRoots:
    """The trust anchor (ARK) of one product and its intermediates (ASK for VCEKs, ASVK for VLEKs)."""

    ark: x509.Certificate
    ask: x509.Certificate | None = None
    asvk: x509.Certificate | None = None


@dataclasses.dataclass(frozen=True)
class TrustedRoots:
    """The roots a verification may end in. `pinned()` gives the real vendor roots; tests and the simulated TEE
    pass their own (and then the resulting claims say `simulated=True`)."""

    intel: tuple[x509.Certificate, ...] = ()
    amd: tuple[tuple[str, AmdRoots], ...] = ()  # (product, roots)
    nitro: tuple[x509.Certificate, ...] = ()
    vendor: bool = False  # True only for the pinned real vendor roots

    def amd_for(self, product: str) -> AmdRoots | None:
        for name, roots in self.amd:
            if name.lower() == product.lower():
                return roots
        return None


@cache
def pinned() -> TrustedRoots:
    intel = _load("intel_sgx_root_ca.pem")
    nitro = _load("aws_nitro_enclaves_root_g1.pem")
    if fingerprint(intel) != INTEL_SGX_ROOT_SHA256 or fingerprint(nitro) != AWS_NITRO_ROOT_SHA256:
        raise RuntimeError("a pinned vendor root file does not match its fingerprint")
    amd = []
    for product in AMD_PRODUCTS:
        low = product.lower()
        asvk_path = _DIR / f"amd_asvk_{low}.pem"
        amd.append(
            (
                product,
                AmdRoots(
                    ark=_load(f"amd_ark_{low}.pem"),
                    ask=_load(f"amd_ask_{low}.pem"),
                    asvk=_load(asvk_path.name) if asvk_path.exists() else None,
                ),
            )
        )
    return TrustedRoots(intel=(intel,), amd=tuple(amd), nitro=(nitro,), vendor=True)
