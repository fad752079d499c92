"""What verified evidence says, in one shape for every TEE."""

from __future__ import annotations

import dataclasses
from datetime import datetime


@dataclasses.dataclass(frozen=True)
class Claims:
    tee: str  # "sgx" | "tdx" | "sev-snp" | "nitro"
    measurement: bytes  # MRENCLAVE, MRTD, MEASUREMENT or PCR0
    report_data: bytes  # REPORTDATA (64 bytes); Nitro: user_data (may be empty)
    debug: bool
    verified_at: datetime
    root_fingerprint: str  # SHA-256 hex of the trust anchor the chain ended in
    simulated: bool = False  # the chain ended in a root that is not a pinned vendor root (passed explicitly)
    tcb_status: str | None = None  # Intel TCB status
    advisory_ids: tuple[str, ...] = ()
    signer: bytes | None = None  # SGX MRSIGNER
    host_data: bytes | None = None  # SNP HOST_DATA, TDX MRCONFIGID
    rtmrs: tuple[bytes, ...] = ()  # TDX RTMR0-3
    pcrs: tuple[tuple[int, bytes], ...] = ()  # Nitro PCRs
    product: str | None = None  # SNP product (Milan, Genoa, Turin)
    tcb: tuple[tuple[str, int], ...] = ()  # SNP reported TCB components, SGX/TDX SVNs
    nonce: bytes | None = None  # Nitro nonce
    public_key: bytes | None = None  # Nitro public_key
    details: tuple[tuple[str, str], ...] = ()  # other named values worth printing (hex)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form: bytes as hex, times as ISO 8601."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(v: object) -> object:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v
