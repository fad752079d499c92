"""A simulated TEE: real evidence formats, signed by a simulated vendor PKI kept in a directory.

It lets the bootstrap flow, RA-TLS and `ckms verify` run end to end on any machine. The evidence is
byte-for-byte what real hardware produces (SGX quote v3, TDX quote v4, SEV-SNP report v2/v3 with its certificate
table); only the signing roots differ, and a verifier accepts them only when told to trust that directory's roots
(`SimulatedTee.roots()`), never by default.

The guest's measurement (MRENCLAVE / MRTD / MEASUREMENT) and HOST_DATA (SNP) or MRCONFIGID (TDX) are configurable.
The sealing key is derived from a secret kept in the directory and from the measurement, so a guest with another
measurement gets another key, as on real hardware.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from attestation.roots import TrustedRoots
from attestation.tee import Evidence
from attestation.tee.sim_amd import SimAmdPki
from attestation.tee.sim_intel import SimIntelPki

KINDS = ("sgx", "tdx", "sev-snp")
_MEASUREMENT_SIZE = {"sgx": 32, "tdx": 48, "sev-snp": 48}
_HOST_DATA_SIZE = {"tdx": 48, "sev-snp": 32}
_SECRET_FILE = "platform-secret"
_SEALING_SALT = b"zt-kms/simulated-tee/sealing/v1"


def default_measurement(kind: str) -> bytes:
    """The measurement of the default simulated guest (a fixed, recognisable value)."""
    return hashlib.sha384(b"zt-kms simulated guest").digest()[: _MEASUREMENT_SIZE[kind]]


class SimulatedTee:
    """TeeProvider for a simulated SGX enclave, TDX guest or SEV-SNP guest."""

    def __init__(
        self,
        directory: Path,
        kind: str = "sev-snp",
        *,
        measurement: bytes | None = None,
        host_data: bytes | None = None,
        snp_version: int = 2,
        mrsigner: bytes | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"simulated TEE kind must be one of {', '.join(KINDS)}, not {kind!r}")
        self.kind = kind
        self.directory = Path(directory)
        size = _MEASUREMENT_SIZE[kind]
        self.measurement = measurement if measurement is not None else default_measurement(kind)
        if len(self.measurement) != size:
            raise ValueError(f"a simulated {kind} measurement is {size} bytes, not {len(self.measurement)}")
        self.host_data = host_data if host_data is not None else bytes(_HOST_DATA_SIZE.get(kind, 0))
        if kind in _HOST_DATA_SIZE and len(self.host_data) != _HOST_DATA_SIZE[kind]:
            raise ValueError(f"simulated {kind} host data is {_HOST_DATA_SIZE[kind]} bytes")
        if kind == "sgx" and host_data:
            raise ValueError("SGX has no HOST_DATA/MRCONFIGID")
        self.snp_version = snp_version
        self.mrsigner = mrsigner if mrsigner is not None else hashlib.sha256(b"zt-kms simulated signer").digest()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._intel: SimIntelPki | None = None
        self._amd: SimAmdPki | None = None

    # -- the simulated vendor PKIs (created once in the directory, then reused) --------------------------------

    @property
    def intel(self) -> SimIntelPki:
        if self._intel is None:
            self._intel = SimIntelPki.load_or_create(self.directory)
        return self._intel

    @property
    def amd(self) -> SimAmdPki:
        if self._amd is None:
            self._amd = SimAmdPki.load_or_create(self.directory)
        return self._amd

    def roots(self) -> TrustedRoots:
        """The simulated roots of this directory, to pass explicitly to a verifier."""
        if self.kind == "sev-snp":
            return self.amd.roots()
        return self.intel.roots()

    def root_path(self) -> Path:
        """The file holding this kind's simulated trust anchor (what a verifier is told to trust)."""
        return self.amd.directory / "ark.pem" if self.kind == "sev-snp" else self.intel.root_path()

    def root_pem(self) -> bytes:
        """The trust anchor of this kind's simulated PKI (Intel-style root or AMD-style ARK)."""
        return self.amd.ark_pem() if self.kind == "sev-snp" else self.intel.root_pem()

    # -- TeeProvider ------------------------------------------------------------------------------------------

    def quote(self, report_data: bytes) -> Evidence:
        if len(report_data) > 64:
            raise ValueError("report data is at most 64 bytes")
        data = report_data.ljust(64, b"\x00")
        if self.kind == "sgx":
            quote = self.intel.sgx_quote(data, self.measurement, self.mrsigner)
            return Evidence("sgx", quote, collateral=self.intel.collateral("sgx"))
        if self.kind == "tdx":
            quote = self.intel.tdx_quote(data, self.measurement, mrconfigid=self.host_data)
            return Evidence("tdx", quote, collateral=self.intel.collateral("tdx"))
        report = self.amd.extended_report(data, self.measurement, host_data=self.host_data, version=self.snp_version)
        return Evidence("sev-snp", report)

    def sealing_key(self, label: bytes) -> bytes:
        if not label:
            raise ValueError("a sealing key needs a non-empty label")
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=_SEALING_SALT,
            info=self.kind.encode() + b"\x00" + self.measurement + b"\x00" + label,
        )
        return hkdf.derive(self._platform_secret())

    def _platform_secret(self) -> bytes:
        """The simulated chip's secret: created once per directory, readable by its owner only."""
        path = self.directory / _SECRET_FILE
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        secret = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secret)
        finally:
            os.close(fd)
        return secret
