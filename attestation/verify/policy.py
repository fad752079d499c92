"""What a verifier requires of evidence beyond a valid vendor signature: the appraisal policy."""

from __future__ import annotations

import dataclasses

# TCB statuses accepted by default: the platform is patched, possibly needing configuration or software
# hardening (which the enclave or TD may provide). OutOfDate and Revoked platforms are refused.
DEFAULT_TCB_STATUSES = frozenset(
    {"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"}
)


@dataclasses.dataclass(frozen=True)
class SnpTcb:
    """Minimum SEV-SNP TCB component versions (each reported component must be >= its minimum)."""

    bootloader: int = 0
    tee: int = 0
    snp: int = 0
    microcode: int = 0
    fmc: int = 0


@dataclasses.dataclass(frozen=True)
class Policy:
    """Every field left at its default accepts anything, except `allow_debug` (debug refused by default).

    measurements: accepted values of the main measurement (SGX MRENCLAVE, TDX MRTD, SNP MEASUREMENT,
        Nitro PCR0); empty = any.
    mrsigners: accepted SGX MRSIGNER values; empty = any.
    rtmrs: TDX RTMR index -> required value.
    pcrs: Nitro PCR index -> required value.
    report_data: the exact 64 bytes (SGX/TDX/SNP) or Nitro user_data/nonce binding the evidence must carry.
    host_data: SNP HOST_DATA; mr_config_id: TDX MRCONFIGID.
    accepted_tcb_statuses: Intel TCB statuses accepted.
    min_snp_tcb: SNP REPORTED_TCB minimums; vmpl: required SNP VMPL.
    min_isv_svn: SGX ISVSVN minimum.
    require_tcb: Intel: refuse a quote verified without collateral (chain and signatures only, no TCB verdict).
    """

    measurements: tuple[bytes, ...] = ()
    mrsigners: tuple[bytes, ...] = ()
    rtmrs: tuple[tuple[int, bytes], ...] = ()
    pcrs: tuple[tuple[int, bytes], ...] = ()
    report_data: bytes | None = None
    host_data: bytes | None = None
    mr_config_id: bytes | None = None
    allow_debug: bool = False
    accepted_tcb_statuses: frozenset[str] = DEFAULT_TCB_STATUSES
    min_snp_tcb: SnpTcb | None = None
    vmpl: int | None = None
    min_isv_svn: int | None = None
    require_tcb: bool = True
