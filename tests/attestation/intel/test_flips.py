"""Every single-byte change of every byte of header, body and signature data of each real quote is rejected.

A byte of the quote that could change without the verdict changing would be a byte nobody vouches for. The
trailing bytes after the signature data are the only exception: they are not part of the quote (tested too).
"""

from __future__ import annotations

from collections import Counter

import pytest

from attestation.errors import FormatError, VerificationError
from attestation.roots import pinned
from attestation.verify.intel import verify_intel
from tests.attestation.intel.conftest import Sample

SAMPLES = ["sgx_quote", "tdx_quote", "tdx-quote.hex", "tdx_prod_quote_SPR_E4", "cos-113-tdx-quote"]
FLIP = 0x01  # the lowest bit: in the PEM text this mostly gives another valid base64 character


def _outcome(sample: Sample, data: bytes) -> str:
    try:
        verify_intel(data, now=sample.now, policy=sample.policy, roots=pinned(), collateral=sample.collateral)
    except VerificationError as exc:
        return exc.check
    except FormatError:
        return "format"
    return "ok"


@pytest.mark.parametrize("name", SAMPLES)
def test_every_byte_flip_is_rejected(intel_samples: dict[str, Sample], name: str) -> None:
    seen = _flip_all(intel_samples[name], (FLIP,))
    # the rejections come from the steps that guard each region, not from one catch-all
    assert seen["quote-signature"] > 0 and seen["format"] > 0
    assert seen["qe-report-signature"] > 0 and seen["qe-report-binding"] > 0 and seen["pck-chain"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", SAMPLES)
def test_every_byte_flip_other_bits(intel_samples: dict[str, Sample], name: str) -> None:
    _flip_all(intel_samples[name], (0x80, 0xFF))


def _flip_all(s: Sample, masks: tuple[int, ...]) -> Counter[str]:
    """Flip each byte of the quote with each mask; every variant must be rejected. Returns the checks seen."""
    baseline = _outcome(s, s.quote)
    assert baseline == (s.outcome or "ok")
    seen: Counter[str] = Counter()
    accepted = []
    for i in range(s.consumed):
        for mask in masks:
            data = bytearray(s.quote)
            data[i] ^= mask
            outcome = _outcome(s, bytes(data))
            seen[outcome] += 1
            # rejected, and for the documented negative case rejected before the step it normally fails at
            if outcome in ("ok", baseline):
                accepted.append((i, mask, outcome))
    assert not accepted, f"{len(accepted)} flips not rejected, first: {accepted[:5]}"
    return seen


@pytest.mark.parametrize("name", ["tdx_quote", "tdx_prod_quote_SPR_E4", "cos-113-tdx-quote"])
def test_trailing_bytes_do_not_matter(intel_samples: dict[str, Sample], name: str) -> None:
    s = intel_samples[name]
    assert len(s.quote) > s.consumed
    baseline = _outcome(s, s.quote)
    for i in range(s.consumed, len(s.quote)):
        data = bytearray(s.quote)
        data[i] ^= 0xFF
        assert _outcome(s, bytes(data)) == baseline
    assert _outcome(s, s.quote[: s.consumed]) == baseline
