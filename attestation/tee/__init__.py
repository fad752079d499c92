"""TEE providers behind one interface: `kind`, `quote(report_data)`, `sealing_key(label)`.

`detect()` picks the real provider whose device interface exists (configfs-tsm for TDX and SEV-SNP, Gramine's
/dev/attestation for SGX, /dev/sev-guest for SNP derived keys); the simulated provider is only ever chosen
explicitly.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What a provider returns: the raw evidence and whatever a verifier needs next to it.

    kind: 'sgx' | 'tdx' | 'sev-snp'. data: quote or report bytes. certificates: SEV-SNP certificate table
    (extended report) or PEM chain. collateral: Intel QuoteCollateralV3 JSON when the provider has it.
    """

    kind: str
    data: bytes
    certificates: bytes | None = None
    collateral: str | None = None


class TeeProvider(Protocol):
    kind: str  # 'sgx' | 'tdx' | 'sev-snp'

    def quote(self, report_data: bytes) -> Evidence:
        """Evidence binding `report_data` (at most 64 bytes, zero-padded)."""
        ...

    def sealing_key(self, label: bytes) -> bytes:
        """A 32-byte key bound to this platform and to the launch measurement, distinct per label."""
        ...


def detect(root: Path = Path("/")) -> TeeProvider | None:
    """The real provider available on this machine (paths are resolved under `root`, for tests), or None."""
    from attestation.tee.providers import detect_provider

    return detect_provider(root)
