"""Expected values of an appliance: the `measurements.json` file (spec/bootstrap.md §8), flags and `tee_conf`.

A verifier that accepts any measurement has verified nothing about the code it is about to trust, so the
commands refuse to run without expected values, and evidence of a TEE type that has no entry is refused: an
image built for SEV-SNP must not be accepted because some TDX guest happens to run the right key.

Sources, first one present wins (they are never merged: a mix would make it unclear what was checked):
1. `--measurements FILE` or `--expected-measurement HEX ...` on the command line (not both);
2. `tee_conf.measurements_file` in the CLI configuration (relative to the configuration file's folder);
3. Cosmian's `tee_conf` fields: `sev_measurement` (SEV-SNP) and `mr_enclave` (+ `public_signer_key`, SGX).

The file, `"format": "kms-measurements/v1"`, maps TEE types to values: `sev-snp` (`measurement` list,
`host_data`), `tdx` (`mrtd` list, `rtmr1` / `rtmr2` lists, `mrconfigid`), `sgx` (`mrenclave` list, `mrsigner`),
`simulated` (`measurement` list, `format`, plus the optional fields of that format). Unknown keys are ignored so
newer files stay readable. A list means "any one of these" (several vCPU counts or firmware builds); a single
string is read as a one-entry list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from attestation.errors import VerificationError
from attestation.verify import Claims, Policy
from ckms.errors import CliError

FORMAT = "kms-measurements/v1"
TEE_TYPES = ("sev-snp", "tdx", "sgx", "simulated")
SIM_FORMATS = ("sev-snp", "tdx", "sgx")
# Size in bytes of the main measurement of each evidence format (SGX MRENCLAVE, TDX MRTD, SNP MEASUREMENT).
MEASUREMENT_SIZE = {"sev-snp": 48, "tdx": 48, "sgx": 32}
MRCONFIGID_SIZE = 48
OWNER_HASH_SIZE = 32  # an owner key hash in MRCONFIGID occupies the first 32 of its 48 bytes (PROTOCOL.md)


class MeasurementsError(CliError):
    """The expected values cannot be read: a bad file, a bad hex value, a missing source."""


@dataclasses.dataclass(frozen=True)
class Expectation:
    """What one TEE type is allowed to report.

    measurements: accepted main measurements (SNP MEASUREMENT, TDX MRTD, SGX MRENCLAVE), any one of them.
    host_data: SNP HOST_DATA (32 bytes). mr_config_id: TDX MRCONFIGID (48 bytes). mrsigner: SGX MRSIGNER.
    rtmr1 / rtmr2: accepted TDX RTMR1 / RTMR2 values (any one of each list; empty = not checked).
    sim_format: for the `simulated` entry, the evidence format the simulated TEE must emit (None = any).
    """

    tee: str
    measurements: tuple[bytes, ...]
    host_data: bytes | None = None
    mr_config_id: bytes | None = None
    mrsigner: bytes | None = None
    rtmr1: tuple[bytes, ...] = ()
    rtmr2: tuple[bytes, ...] = ()
    sim_format: str | None = None

    def policy(self) -> Policy:
        """The library policy: everything it can check itself. Debug stays refused (the Policy default) and
        there is deliberately no way to allow it from here."""
        return Policy(
            measurements=self.measurements,
            mrsigners=(self.mrsigner,) if self.mrsigner is not None else (),
            host_data=self.host_data,
            mr_config_id=self.mr_config_id,
        )

    def check_claims(self, claims: Claims) -> list[tuple[str, str]]:
        """The checks the library's Policy cannot express (lists of RTMR alternatives), on verified claims.

        Returns (check, message) for each check that passed; raises VerificationError naming the first that
        failed."""
        passed: list[tuple[str, str]] = []
        for index, accepted in ((1, self.rtmr1), (2, self.rtmr2)):
            if not accepted:
                continue
            check = f"rtmr{index}"
            if len(claims.rtmrs) <= index:
                raise VerificationError(check, f"the {claims.tee} evidence has no RTMR{index}")
            value = claims.rtmrs[index]
            if not any(hmac.compare_digest(value, a) for a in accepted):
                raise VerificationError(check, f"RTMR{index} {value.hex()} is not an expected value")
            passed.append((check, f"RTMR{index} {value.hex()} is an expected value"))
        return passed


@dataclasses.dataclass(frozen=True)
class ExpectedValues:
    """The expected values from one source; `source` says which, for the output."""

    source: str
    entries: Mapping[str, Expectation]
    any_type: Expectation | None = None  # --expected-measurement: whatever TEE type the evidence has
    image: str | None = None  # "name version" of the image the file describes, for the output

    def for_evidence(self, kind: str, simulated: bool) -> Expectation:
        """The expectation for evidence of `kind` ("sev-snp" | "tdx" | "sgx"), verified against a simulated root
        or a real vendor root. VerificationError("tee-type") when there is none: that evidence is refused."""
        if kind not in MEASUREMENT_SIZE:
            raise VerificationError("tee-type", f"{kind} evidence is not an appliance TEE (sev-snp, tdx, sgx)")
        if self.any_type is not None:
            return dataclasses.replace(self.any_type, tee="simulated" if simulated else kind)
        key = "simulated" if simulated else kind
        found = self.entries.get(key)
        if found is None:
            have = ", ".join(sorted(self.entries)) or "none"
            what = f"simulated {kind}" if simulated else kind
            raise VerificationError(
                "tee-type", f"{self.source} has no {key!r} entry (it has: {have}), so {what} evidence is refused"
            )
        if simulated and found.sim_format is not None and found.sim_format != kind:
            raise VerificationError(
                "tee-type", f"the simulated entry of {self.source} is for {found.sim_format} evidence, not {kind}"
            )
        # A value the evidence cannot carry must fail, not be skipped by a verifier that does not look at it.
        carried_by = {"host_data": "sev-snp", "mrconfigid": "tdx", "mrsigner": "sgx", "rtmr1": "tdx", "rtmr2": "tdx"}
        present = {
            "host_data": found.host_data is not None,
            "mrconfigid": found.mr_config_id is not None,
            "mrsigner": found.mrsigner is not None,
            "rtmr1": bool(found.rtmr1),
            "rtmr2": bool(found.rtmr2),
        }
        inapplicable = [name for name, given in present.items() if given and carried_by[name] != kind]
        if inapplicable:
            raise VerificationError(
                "policy", f"{self.source} expects {', '.join(inapplicable)}, which {kind} evidence does not carry"
            )
        return found

    def describe(self) -> str:
        kinds = "any TEE type" if self.any_type is not None else ", ".join(sorted(self.entries))
        image = f", image {self.image}" if self.image else ""
        return f"{self.source} ({kinds}{image})"


# ----------------------------------------------------------------------------------------------- parsing


def _hex(value: object, where: str, sizes: Sequence[int]) -> bytes:
    if not isinstance(value, str):
        raise MeasurementsError(f"{where}: must be a hex string")
    text = value.strip().removeprefix("0x").removeprefix("0X")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise MeasurementsError(f"{where}: not hexadecimal") from None
    if sizes and len(raw) not in sizes:
        wanted = " or ".join(str(2 * s) for s in sizes)
        raise MeasurementsError(f"{where}: {2 * len(raw)} hex digits, expected {wanted}")
    return raw


def _hex_list(value: object, where: str, sizes: Sequence[int]) -> tuple[bytes, ...]:
    """A list of alternatives; one string is a one-entry list."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise MeasurementsError(f"{where}: must be a list of hex strings")
    return tuple(_hex(v, f"{where}[{i}]", sizes) for i, v in enumerate(items))


def _optional_hex(entry: Mapping[str, Any], key: str, where: str, sizes: Sequence[int]) -> bytes | None:
    value = entry.get(key)
    if value is None or value == "":
        return None
    return _hex(value, f"{where}.{key}", sizes)


def _mr_config_id(entry: Mapping[str, Any], where: str) -> bytes | None:
    """MRCONFIGID: 48 bytes, or a 32-byte owner key hash, zero-padded as the server places it."""
    value = _optional_hex(entry, "mrconfigid", where, (OWNER_HASH_SIZE, MRCONFIGID_SIZE))
    return value.ljust(MRCONFIGID_SIZE, b"\x00") if value is not None else None


def _require_list(entry: Mapping[str, Any], key: str, where: str, sizes: Sequence[int]) -> tuple[bytes, ...]:
    if key not in entry:
        raise MeasurementsError(f"{where}: no {key!r} (the list of accepted values)")
    values = _hex_list(entry[key], f"{where}.{key}", sizes)
    if not values:
        raise MeasurementsError(f"{where}.{key}: empty list (nothing would be accepted)")
    return values


def _entry(tee: str, entry: object, where: str) -> Expectation:
    if not isinstance(entry, Mapping):
        raise MeasurementsError(f"{where}: must be a JSON object")
    if tee == "sev-snp":
        return Expectation(
            tee,
            _require_list(entry, "measurement", where, (48,)),
            host_data=_optional_hex(entry, "host_data", where, (32,)),
        )
    if tee == "tdx":
        return Expectation(
            tee,
            _require_list(entry, "mrtd", where, (48,)),
            mr_config_id=_mr_config_id(entry, where),
            rtmr1=_hex_list(entry.get("rtmr1", []), f"{where}.rtmr1", (48,)),
            rtmr2=_hex_list(entry.get("rtmr2", []), f"{where}.rtmr2", (48,)),
        )
    if tee == "sgx":
        return Expectation(
            tee,
            _require_list(entry, "mrenclave", where, (32,)),
            mrsigner=_optional_hex(entry, "mrsigner", where, (32,)),
        )
    # simulated: the measurement list, the format the simulated TEE emits, and that format's optional fields.
    fmt = entry.get("format")
    if fmt is not None and fmt not in SIM_FORMATS:
        raise MeasurementsError(f"{where}.format: {fmt!r} is not one of {', '.join(SIM_FORMATS)}")
    sizes = (MEASUREMENT_SIZE[fmt],) if fmt else (32, 48)
    return Expectation(
        tee,
        _require_list(entry, "measurement", where, sizes),
        host_data=_optional_hex(entry, "host_data", where, (32,)),
        mr_config_id=_mr_config_id(entry, where),
        mrsigner=_optional_hex(entry, "mrsigner", where, (32,)),
        rtmr1=_hex_list(entry.get("rtmr1", []), f"{where}.rtmr1", (48,)),
        rtmr2=_hex_list(entry.get("rtmr2", []), f"{where}.rtmr2", (48,)),
        sim_format=fmt,
    )


def parse_measurements(data: object, source: str) -> ExpectedValues:
    """The expected values of a parsed `measurements.json` (MeasurementsError naming the bad field)."""
    if not isinstance(data, Mapping):
        raise MeasurementsError(f"{source}: must be a JSON object")
    if data.get("format") != FORMAT:
        raise MeasurementsError(f"{source}: format is {data.get('format')!r}, expected {FORMAT!r}")
    tee = data.get("tee")
    if not isinstance(tee, Mapping):
        raise MeasurementsError(f"{source}: no \"tee\" object")
    entries = {name: _entry(name, tee[name], f"{source}: tee.{name}") for name in TEE_TYPES if name in tee}
    image = None
    info = data.get("image")
    if isinstance(info, Mapping):
        image = " ".join(str(info[k]) for k in ("name", "version") if isinstance(info.get(k), str)) or None
    return ExpectedValues(source, entries, image=image)


def load_measurements_file(path: Path) -> ExpectedValues:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise MeasurementsError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise MeasurementsError(f"{path} is not valid JSON: {exc}") from None
    return parse_measurements(data, str(path))


def from_flags(values: Sequence[str]) -> ExpectedValues:
    """`--expected-measurement HEX ...`: a list of alternatives for whatever TEE type the evidence has."""
    measurements = tuple(_hex(v, "--expected-measurement", (32, 48)) for v in values)
    return ExpectedValues("--expected-measurement", {}, any_type=Expectation("any", measurements))


def mrsigner_of(public_key_pem: str, where: str) -> bytes:
    """SGX MRSIGNER of an enclave signing key: SHA-256 of its RSA modulus, little-endian (Cosmian's
    `public_signer_key`)."""
    try:
        key = serialization.load_pem_public_key(public_key_pem.encode())
    except ValueError as exc:
        raise MeasurementsError(f"{where}: not a PEM public key ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise MeasurementsError(f"{where}: an SGX signer key is RSA")
    modulus = key.public_numbers().n
    return hashlib.sha256(modulus.to_bytes((key.key_size + 7) // 8, "little")).digest()


def _conf_path(value: object, field: str, base: Path | None) -> Path:
    if not isinstance(value, str) or not value:
        raise MeasurementsError(f"tee_conf.{field} must be a path")
    path = Path(value).expanduser()
    return path if path.is_absolute() or base is None else base / path


def from_tee_conf(tee_conf: Mapping[str, Any] | None, base: Path | None, where: str) -> ExpectedValues | None:
    """Expected values from the configuration's `tee_conf` (None when it names none)."""
    if not tee_conf:
        return None
    if tee_conf.get("measurements_file"):
        return load_measurements_file(_conf_path(tee_conf["measurements_file"], "measurements_file", base))
    entries: dict[str, Expectation] = {}
    if tee_conf.get("sev_measurement"):
        measurement = _hex(tee_conf["sev_measurement"], "tee_conf.sev_measurement", (48,))
        entries["sev-snp"] = Expectation("sev-snp", (measurement,))
    if tee_conf.get("mr_enclave"):
        mrenclave = _hex(tee_conf["mr_enclave"], "tee_conf.mr_enclave", (32,))
        signer_pem = tee_conf.get("public_signer_key")
        signer = mrsigner_of(signer_pem, "tee_conf.public_signer_key") if isinstance(signer_pem, str) else None
        entries["sgx"] = Expectation("sgx", (mrenclave,), mrsigner=signer)
    if not entries:
        return None
    return ExpectedValues(f"tee_conf in {where}", entries)


def select(
    *,
    measurements_file: Path | None,
    expected: Sequence[str],
    tee_conf: Mapping[str, Any] | None,
    conf_dir: Path | None,
    conf_name: str,
) -> ExpectedValues:
    """The expected values to apply, from the first source present (module docstring); MeasurementsError when
    there are none, because verifying evidence against nothing proves nothing."""
    if measurements_file is not None and expected:
        raise MeasurementsError("give either --measurements or --expected-measurement, not both")
    if measurements_file is not None:
        return load_measurements_file(measurements_file)
    if expected:
        return from_flags(expected)
    found = from_tee_conf(tee_conf, conf_dir, conf_name)
    if found is None:
        raise MeasurementsError(
            "no expected measurement: give --measurements FILE (the image's measurements.json) or "
            "--expected-measurement HEX, or set tee_conf.measurements_file in the configuration"
        )
    return found


def simulated_root_paths(
    flags: Sequence[Path], tee_conf: Mapping[str, Any] | None, conf_dir: Path | None
) -> tuple[Path, ...]:
    """`--trust-simulated-root` files, else `tee_conf.simulated_root` (a path or a list of paths)."""
    if flags:
        return tuple(flags)
    value = (tee_conf or {}).get("simulated_root")
    if not value:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(_conf_path(v, "simulated_root", conf_dir) for v in items)
