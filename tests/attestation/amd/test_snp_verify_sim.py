"""Simulated SEV-SNP reports: accepted with the simulated roots only; every check and policy item both ways."""

from __future__ import annotations

import dataclasses
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from attestation.errors import FormatError, VerificationError
from attestation.formats.snp import (
    GUID_ARK,
    GUID_ASK,
    GUID_VCEK,
    REPORT_SIZE,
    CertTable,
    TcbVersion,
    parse_cert_table,
    parse_report,
)
from attestation.roots import fingerprint
from attestation.tee.sim_amd import SimAmdPki
from attestation.verify.amd import verify_snp
from attestation.verify.claims import Claims
from attestation.verify.policy import Policy, SnpTcb

from .conftest import SIM_NOW, SIM_START

MEASUREMENT = bytes(range(48))
NONCE = b"nonce-" + bytes(range(58))


def _check(fn: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(VerificationError) as err:
        fn(*args, **kwargs)  # type: ignore[operator]
    return err.value.check


def _verify(pki: SimAmdPki, raw: bytes, **kwargs: object) -> Claims:
    kwargs.setdefault("roots", pki.roots())
    return verify_snp(raw, now=SIM_NOW, **kwargs)  # type: ignore[arg-type]


def _forge(pki: SimAmdPki, raw: bytes, offset: int, value: bytes, signer: str = "vcek") -> bytes:
    """Change signed bytes and sign again with the genuine key (the firmware would never emit this)."""
    out = bytearray(raw)
    out[offset : offset + len(value)] = value
    return pki.sign_report(bytes(out), signer=signer)


# -- accepted with the simulated roots, refused with the pinned ones ---------------------------------------------


@pytest.mark.parametrize("version", [2, 3, 4, 5])
@pytest.mark.parametrize("framing", ["bare+vcek", "bare+vcek+chain", "extended"])
def test_sim_reports_verify(sim_milan: SimAmdPki, version: int, framing: str) -> None:
    if framing == "extended":
        raw = sim_milan.extended_report(NONCE, MEASUREMENT, version=version)
        claims = _verify(sim_milan, raw)
    else:
        raw = sim_milan.report(NONCE, MEASUREMENT, version=version)
        chain = sim_milan.cert_chain_pem() if framing.endswith("chain") else None
        claims = _verify(sim_milan, raw, vcek=sim_milan.vcek_der(), cert_chain=chain)
    assert claims.simulated and claims.tee == "sev-snp" and claims.product == "Milan"
    assert claims.measurement == MEASUREMENT and claims.report_data == NONCE
    assert claims.root_fingerprint == fingerprint(sim_milan.ark)
    assert claims.tcb == sim_milan.tcb.components()
    assert dict(claims.details)["version"] == str(version)


@pytest.mark.parametrize("version", [2, 3, 5])
def test_sim_reports_are_refused_by_the_pinned_roots(sim_milan: SimAmdPki, version: int) -> None:
    bare = sim_milan.report(NONCE, MEASUREMENT, version=version)
    # the simulated ASK has its own name: no pinned ASK issued the VCEK
    assert _check(verify_snp, bare, now=SIM_NOW, vcek=sim_milan.vcek_der()) == "ask"
    # a chain or a table bringing the simulated ARK: not the pinned ARK
    assert _check(verify_snp, bare, now=SIM_NOW, vcek=sim_milan.vcek_der(), cert_chain=sim_milan.cert_chain_pem()) \
        == "ark"
    assert _check(verify_snp, sim_milan.extended_report(NONCE, MEASUREMENT, version=version), now=SIM_NOW) == "ark"


def test_sim_report_refused_by_another_simulated_pki(sim_milan: SimAmdPki, sim_other_milan: SimAmdPki) -> None:
    raw = sim_milan.report(NONCE, MEASUREMENT)
    # same names, other keys: the ASK signature by the other ARK fails ...
    assert _check(_verify, sim_other_milan, raw, vcek=sim_milan.vcek_der()) == "vcek-chain"
    # ... and an ASK brought along must still be signed by the trusted ARK
    assert _check(_verify, sim_other_milan, raw, vcek=sim_milan.vcek_der(),
                  cert_chain=sim_milan.ask.public_bytes(Encoding.PEM)) == "ask"


@pytest.mark.parametrize("version", [2, 3, 5])
def test_vlek_signed_reports(sim_milan: SimAmdPki, version: int) -> None:
    ext = sim_milan.extended_report(NONCE, MEASUREMENT, version=version, signer="vlek")
    claims = _verify(sim_milan, ext)
    details = dict(claims.details)
    assert details["signing_key"] == "vlek" and details["csp_id"] == "CN=simulated-csp"
    bare = sim_milan.report(NONCE, MEASUREMENT, version=version, signer="vlek")
    assert _verify(sim_milan, bare, vcek=sim_milan.vlek_der(), cert_chain=sim_milan.cert_chain_pem("vlek"))
    # a VLEK-signed report presented with the VCEK, and a VCEK report claiming a VLEK signature
    assert _check(_verify, sim_milan, bare, vcek=sim_milan.vcek_der()) == "signer"
    vcek_report = sim_milan.report(NONCE, MEASUREMENT, version=version)
    assert _check(_verify, sim_milan, vcek_report, vcek=sim_milan.vlek_der()) == "signer"
    # without the ASVK among the roots and no chain, the VLEK has no issuer
    roots = sim_milan.roots()
    amd = dataclasses.replace(roots.amd[0][1], asvk=None)
    no_asvk = dataclasses.replace(roots, amd=(("Milan", amd),))
    assert _check(verify_snp, bare, now=SIM_NOW, roots=no_asvk, vcek=sim_milan.vlek_der()) == "ask"


def test_genoa_and_turin(sim_genoa: SimAmdPki, sim_turin: SimAmdPki) -> None:
    for pki in (sim_genoa, sim_turin):
        for version in (2, 3, 5):
            claims = _verify(pki, pki.extended_report(NONCE, MEASUREMENT, version=version))
            assert claims.product == pki.product
    turin = _verify(sim_turin, sim_turin.extended_report(NONCE, MEASUREMENT, version=3))
    assert turin.tcb == (("fmc", 1), ("bootloader", 1), ("tee", 0), ("snp", 3), ("microcode", 9))
    # the Turin CHIP_ID is the 8-byte hwID then zeros
    assert dict(turin.details)["chip_id"] == sim_turin.chip_id.hex() and not any(sim_turin.chip_id[8:])


def test_sim_reports_need_the_roots_of_their_product(sim_milan: SimAmdPki, sim_turin: SimAmdPki) -> None:
    raw = sim_turin.extended_report(NONCE, MEASUREMENT, version=3)
    assert _check(verify_snp, raw, now=SIM_NOW, roots=sim_milan.roots()) == "product"


# -- tampering ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 5])
def test_every_byte_flip_of_a_sim_report_is_rejected(sim_milan: SimAmdPki, version: int) -> None:
    raw = sim_milan.report(NONCE, MEASUREMENT, version=version)
    roots, vcek = sim_milan.roots(), sim_milan.vcek_der()
    verify_snp(raw, now=SIM_NOW, roots=roots, vcek=vcek)
    accepted = []
    for i in range(REPORT_SIZE):
        out = bytearray(raw)
        out[i] ^= 0xFF
        try:
            verify_snp(bytes(out), now=SIM_NOW, roots=roots, vcek=vcek)
        except (FormatError, VerificationError):
            continue
        accepted.append(hex(i))
    assert accepted == []


@pytest.mark.parametrize(
    ("offset", "check"),
    [(0x50, "report-signature"), (0x90, "report-signature"), (0xC0, "report-signature"),
     (0x180, "report-signature"), (0x2A0, "report-signature"), (0x2E8, "report-signature"),
     (0x2D0, "report-signature"), (0x330, "reserved"), (0x49F, "reserved")],
)
def test_tampered_fields(sim_milan: SimAmdPki, offset: int, check: str) -> None:
    raw = bytearray(sim_milan.extended_report(NONCE, MEASUREMENT, version=3))
    raw[offset] ^= 0x01
    assert _check(_verify, sim_milan, bytes(raw)) == check


def test_forged_vcek_in_the_table(sim_milan: SimAmdPki, sim_other_milan: SimAmdPki) -> None:
    """A table carrying another PKI's VCEK (genuine for its own chip) with our ASK and ARK."""
    raw = sim_milan.report(NONCE, MEASUREMENT)
    table = CertTable.build(
        [(GUID_VCEK, sim_other_milan.vcek_der()), (GUID_ASK, sim_milan.ask.public_bytes(Encoding.DER)),
         (GUID_ARK, sim_milan.ark.public_bytes(Encoding.DER))]
    )
    assert _check(_verify, sim_milan, raw + table.to_bytes()) == "vcek-chain"
    # the other PKI's VCEK is trusted by its roots, but did not sign this report
    assert _check(_verify, sim_other_milan, raw, vcek=sim_other_milan.vcek_der()) == "report-signature"


def test_vcek_argument_wins_over_the_table(sim_milan: SimAmdPki, sim_other_milan: SimAmdPki) -> None:
    raw = sim_milan.extended_report(NONCE, MEASUREMENT)
    assert _check(_verify, sim_milan, raw, vcek=sim_other_milan.vcek_der()) == "vcek-chain"


def test_missing_vcek(sim_milan: SimAmdPki) -> None:
    raw = sim_milan.report(NONCE, MEASUREMENT)
    assert _check(_verify, sim_milan, raw) == "vcek"
    table = parse_cert_table(sim_milan.cert_table().to_bytes())
    no_leaf = CertTable.build([item for item in table.items() if item[0] != GUID_VCEK])
    assert _check(_verify, sim_milan, raw + no_leaf.to_bytes()) == "vcek"


def test_garbage_vcek_is_a_format_error(sim_milan: SimAmdPki) -> None:
    with pytest.raises(FormatError) as err:
        _verify(sim_milan, sim_milan.report(NONCE, MEASUREMENT), vcek=b"\x30\x03\x02\x01\x00")
    assert err.value.field == "vcek"


def test_truncated_extended_report_is_a_format_error(sim_milan: SimAmdPki) -> None:
    raw = sim_milan.extended_report(NONCE, MEASUREMENT)
    for cut in (REPORT_SIZE + 1, REPORT_SIZE + 30, len(raw) - 1):
        with pytest.raises(FormatError) as err:
            _verify(sim_milan, raw[:cut])
        assert err.value.field.startswith("cert_table")


# -- the checks between report and certificate, with genuine signatures over forged fields -----------------------


def test_signature_algo(sim_milan: SimAmdPki) -> None:
    raw = sim_milan.report(NONCE, MEASUREMENT)
    assert _check(_verify, sim_milan, _forge(sim_milan, raw, 0x34, (2).to_bytes(4, "little")),
                  vcek=sim_milan.vcek_der()) == "signature-algo"


@pytest.mark.parametrize(("signer_info", "ok"), [(0b00000, True), (0b00001, True), (0b00010, False),
                                                  (0b00100, False), (0b11100, False)])
def test_signer_info(sim_milan: SimAmdPki, signer_info: int, ok: bool) -> None:
    raw = _forge(sim_milan, sim_milan.report(NONCE, MEASUREMENT), 0x48, signer_info.to_bytes(4, "little"))
    if ok:
        assert _verify(sim_milan, raw, vcek=sim_milan.vcek_der())
    else:
        assert _check(_verify, sim_milan, raw, vcek=sim_milan.vcek_der()) == "signer"


def test_vcek_tcb(sim_milan: SimAmdPki) -> None:
    tcb = sim_milan.tcb
    for field in ("bootloader", "tee", "snp", "microcode"):
        other = dataclasses.replace(tcb, **{field: getattr(tcb, field) + 1})
        raw = sim_milan.report(NONCE, MEASUREMENT, tcb=other)
        assert _check(_verify, sim_milan, raw, vcek=sim_milan.vcek_der()) == "vcek-tcb"
    # the reserved TCB bytes are not an SPL
    raw = sim_milan.report(NONCE, MEASUREMENT, tcb=dataclasses.replace(tcb, reserved=b"\x01\0\0\0"))
    assert _verify(sim_milan, raw, vcek=sim_milan.vcek_der())


def test_vcek_tcb_turin_fmc(sim_turin: SimAmdPki) -> None:
    tcb = sim_turin.tcb
    assert tcb.fmc == 1
    raw = sim_turin.report(NONCE, MEASUREMENT, version=3, tcb=dataclasses.replace(tcb, fmc=2))
    assert _check(_verify, sim_turin, raw, vcek=sim_turin.vcek_der()) == "vcek-tcb"


def test_vcek_chip_id(sim_milan: SimAmdPki, sim_turin: SimAmdPki) -> None:
    raw = sim_milan.report(NONCE, MEASUREMENT)
    forged = _forge(sim_milan, raw, 0x1A0, b"\x01" * 64)
    assert _check(_verify, sim_milan, forged, vcek=sim_milan.vcek_der()) == "vcek-chip-id"
    # a masked CHIP_ID is accepted: the VCEK signature already names the chip
    masked = _verify(sim_milan, sim_milan.report(NONCE, MEASUREMENT, mask_chip_id=True), vcek=sim_milan.vcek_der())
    assert dict(masked.details)["chip_id"] == "masked"
    # Turin compares the first 8 bytes only
    traw = sim_turin.report(NONCE, MEASUREMENT, version=3)
    assert _verify(sim_turin, _forge(sim_turin, traw, 0x1A8, b"\x07"), vcek=sim_turin.vcek_der())
    assert _check(_verify, sim_turin, _forge(sim_turin, traw, 0x1A7, b"\x07"), vcek=sim_turin.vcek_der()) \
        == "vcek-chip-id"


def test_product_from_cpuid_must_match_the_vcek(sim_milan: SimAmdPki) -> None:
    raw = sim_milan.report(NONCE, MEASUREMENT, version=3)
    genoa = _forge(sim_milan, raw, 0x188, b"\x19\x11\x01")
    assert _check(_verify, sim_milan, genoa, vcek=sim_milan.vcek_der()) == "product"
    unknown = _forge(sim_milan, raw, 0x188, b"\x17\x31\x00")
    assert _check(_verify, sim_milan, unknown, vcek=sim_milan.vcek_der()) == "product"
    # a zero CPUID tells nothing: the VCEK's productName decides
    assert _verify(sim_milan, _forge(sim_milan, raw, 0x188, b"\0\0\0"), vcek=sim_milan.vcek_der())


# -- policy, each item both ways ---------------------------------------------------------------------------------


def test_debug_refused_by_default(sim_milan: SimAmdPki) -> None:
    raw = sim_milan.extended_report(NONCE, MEASUREMENT, debug=True)
    assert parse_report(raw[:REPORT_SIZE]).policy.value == 0x30000 | 1 << 19
    assert _check(_verify, sim_milan, raw) == "debug"
    claims = _verify(sim_milan, raw, policy=Policy(allow_debug=True))
    assert claims.debug
    assert not _verify(sim_milan, sim_milan.extended_report(NONCE, MEASUREMENT)).debug


def test_measurement_policy(sim_milan: SimAmdPki) -> None:
    raw = sim_milan.extended_report(NONCE, MEASUREMENT)
    assert _verify(sim_milan, raw, policy=Policy(measurements=(bytes(48), MEASUREMENT)))
    assert _check(_verify, sim_milan, raw, policy=Policy(measurements=(bytes(48),))) == "measurement"


def test_report_data_policy(sim_milan: SimAmdPki) -> None:
    raw = sim_milan.extended_report(b"short", MEASUREMENT)
    assert _verify(sim_milan, raw, policy=Policy(report_data=b"short".ljust(64, b"\0")))
    assert _check(_verify, sim_milan, raw, policy=Policy(report_data=b"other".ljust(64, b"\0"))) == "report-data"
    assert _check(_verify, sim_milan, raw, policy=Policy(report_data=b"short")) == "report-data"  # exact 64 bytes


def test_host_data_policy(sim_milan: SimAmdPki) -> None:
    host_data = bytes(range(100, 132))
    raw = sim_milan.extended_report(NONCE, MEASUREMENT, host_data=host_data)
    claims = _verify(sim_milan, raw, policy=Policy(host_data=host_data))
    assert claims.host_data == host_data
    assert _check(_verify, sim_milan, raw, policy=Policy(host_data=bytes(32))) == "host-data"


def test_vmpl_policy(sim_milan: SimAmdPki) -> None:
    raw = sim_milan.extended_report(NONCE, MEASUREMENT, vmpl=2)
    assert dict(_verify(sim_milan, raw, policy=Policy(vmpl=2)).details)["vmpl"] == "2"
    assert _check(_verify, sim_milan, raw, policy=Policy(vmpl=0)) == "vmpl"


@pytest.mark.parametrize("component", ["bootloader", "tee", "snp", "microcode"])
def test_min_tcb_policy(sim_milan: SimAmdPki, component: str) -> None:
    raw = sim_milan.extended_report(NONCE, MEASUREMENT)
    value = getattr(sim_milan.tcb, component)
    assert _verify(sim_milan, raw, policy=Policy(min_snp_tcb=SnpTcb(**{component: value})))
    too_high = Policy(min_snp_tcb=SnpTcb(**{component: value + 1}))
    assert _check(_verify, sim_milan, raw, policy=too_high) == "tcb"


def test_min_tcb_fmc(sim_milan: SimAmdPki, sim_turin: SimAmdPki) -> None:
    raw = sim_turin.extended_report(NONCE, MEASUREMENT, version=3)
    assert _verify(sim_turin, raw, policy=Policy(min_snp_tcb=SnpTcb(fmc=1)))
    assert _check(_verify, sim_turin, raw, policy=Policy(min_snp_tcb=SnpTcb(fmc=2))) == "tcb"
    # Milan/Genoa have no FMC: the minimum does not apply
    assert _verify(sim_milan, sim_milan.extended_report(NONCE, MEASUREMENT), policy=Policy(min_snp_tcb=SnpTcb(fmc=9)))


def test_policy_checks_the_reported_tcb_not_the_current(sim_milan: SimAmdPki) -> None:
    raw = sim_milan.report(NONCE, MEASUREMENT)
    newer = TcbVersion.from_bytes(bytes.fromhex("0900000000000899"), turin=False)
    current = _forge(sim_milan, raw, 0x38, newer.to_bytes())
    floor = Policy(min_snp_tcb=SnpTcb(bootloader=sim_milan.tcb.bootloader + 1))
    assert _check(_verify, sim_milan, current, vcek=sim_milan.vcek_der(), policy=floor) == "tcb"


# -- the simulated PKI itself ------------------------------------------------------------------------------------


def test_pki_is_created_once_and_reused(tmp_path: Path) -> None:
    first = SimAmdPki.load_or_create(tmp_path, "Genoa", not_before=SIM_START, rsa_bits=2048)
    again = SimAmdPki.load_or_create(tmp_path, "genoa", rsa_bits=4096)
    assert again.product == "Genoa"
    assert again.ark == first.ark and again.vcek == first.vcek and again.vlek == first.vlek
    folder = tmp_path / "amd-genoa"
    for name in ("ark", "ask", "asvk", "vcek", "vlek"):
        assert stat.S_IMODE(os.stat(folder / f"{name}.key").st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["amd-genoa"]  # no temporary folder left
    # a report of the first object verifies with the roots of the reloaded one
    assert verify_snp(first.extended_report(NONCE, MEASUREMENT), now=SIM_NOW, roots=again.roots())


def test_pki_certificates_look_like_amd(sim_milan: SimAmdPki) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    for cert in (sim_milan.ark, sim_milan.ask, sim_milan.asvk, sim_milan.vcek, sim_milan.vlek):
        params = cert.signature_algorithm_parameters
        assert isinstance(params, padding.PSS)
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)
        assert cert.serial_number >= 1
    assert isinstance(sim_milan.vcek.public_key(), ec.EllipticCurvePublicKey)
    assert sim_milan.vcek.not_valid_before_utc == SIM_START
    assert sim_milan.vcek.not_valid_after_utc - SIM_START == timedelta(days=7 * 365)
    assert sim_milan.cert_chain_pem().count(b"BEGIN CERTIFICATE") == 2
    assert sim_milan.cert_chain_pem().startswith(sim_milan.ask.public_bytes(Encoding.PEM))
    assert sim_milan.ark_pem() == sim_milan.ark.public_bytes(Encoding.PEM)


def test_pki_arguments(sim_milan: SimAmdPki, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="product"):
        SimAmdPki.load_or_create(tmp_path, "Naples")
    for kwargs in ({"version": 1}, {"signer": "ask"}):
        with pytest.raises(ValueError):
            sim_milan.report(NONCE, MEASUREMENT, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sim_milan.report(bytes(65), MEASUREMENT)
    with pytest.raises(ValueError):
        sim_milan.report(NONCE, bytes(32))


def test_outside_the_sim_window(sim_milan: SimAmdPki) -> None:
    raw = sim_milan.extended_report(NONCE, MEASUREMENT)
    assert _check(verify_snp, raw, now=SIM_START - timedelta(seconds=1), roots=sim_milan.roots()) == "ark"
    assert _check(verify_snp, raw, now=SIM_START + timedelta(days=7 * 365 + 1), roots=sim_milan.roots()) \
        == "vcek-chain"


# -- hostile certificate tables and chains -----------------------------------------------------------------------


def test_cert_table_flips_never_escape_as_other_errors(sim_milan: SimAmdPki) -> None:
    """Flipping any byte of the table gives FormatError/VerificationError or, when the flip only hides an
    optional certificate (ASK/ARK GUID, an ASK renamed away from the VCEK's issuer), a verdict through the roots."""
    raw = sim_milan.extended_report(NONCE, MEASUREMENT)
    roots = sim_milan.roots()
    outcomes: dict[str, int] = {}
    for i in range(REPORT_SIZE, len(raw)):
        out = bytearray(raw)
        out[i] ^= 0xFF
        try:
            verify_snp(bytes(out), now=SIM_NOW, roots=roots)
            key = "accepted"
        except FormatError as exc:
            key = f"format:{exc.field}"
        except VerificationError as exc:
            key = exc.check
        outcomes[key] = outcomes.get(key, 0) + 1
    assert {"ark", "ask", "vcek-chain", "vcek", "format:cert_table.VCEK"} <= set(outcomes)
    # a flipped ARK is never accepted: the table's ARK entry must be the trusted ARK
    table = parse_cert_table(raw[REPORT_SIZE:])
    ark_entry = next(e for e in table.entries if e.guid == GUID_ARK)
    for i in range(ark_entry.offset, ark_entry.offset + ark_entry.length, 7):
        out = bytearray(raw)
        out[REPORT_SIZE + i] ^= 0x01
        with pytest.raises((FormatError, VerificationError)):
            verify_snp(bytes(out), now=SIM_NOW, roots=roots)


def test_supplied_arks_must_be_the_trusted_one(sim_milan: SimAmdPki, sim_other_milan: SimAmdPki) -> None:
    raw = sim_milan.report(NONCE, MEASUREMENT)
    der = {name: getattr(sim_milan, name).public_bytes(Encoding.DER) for name in ("ark", "ask", "asvk", "vcek")}
    # the ASK in the ARK slot of the table
    table = CertTable.build([(GUID_VCEK, der["vcek"]), (GUID_ASK, der["ask"]), (GUID_ARK, der["ask"])])
    assert _check(_verify, sim_milan, raw + table.to_bytes()) == "ark"
    # a KDS chain ending in something else than the ARK
    pem = sim_milan.ask.public_bytes(Encoding.PEM) + sim_milan.asvk.public_bytes(Encoding.PEM)
    assert _check(_verify, sim_milan, raw, vcek=der["vcek"], cert_chain=pem) == "ark"
    # the other PKI's self-signed ARK anywhere in the chain
    pem = sim_milan.ask.public_bytes(Encoding.PEM) + sim_other_milan.ark_pem() + sim_milan.ark_pem()
    assert _check(_verify, sim_milan, raw, vcek=der["vcek"], cert_chain=pem) == "ark"
    # an ASK alone is a valid chain (the ARK comes from the roots)
    assert _verify(sim_milan, raw, vcek=der["vcek"], cert_chain=sim_milan.ask.public_bytes(Encoding.PEM))


def test_garbage_cert_chain_is_a_format_error(sim_milan: SimAmdPki) -> None:
    raw = sim_milan.report(NONCE, MEASUREMENT)
    with pytest.raises(FormatError) as err:
        _verify(sim_milan, raw, vcek=sim_milan.vcek_der(), cert_chain=b"not a pem")
    assert err.value.field == "cert_chain"
