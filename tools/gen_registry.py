"""Generate kms/kmip/tags.py and kms/kmip/enums.py from the KMIP registries.

The tables come from ../shared/vectors/kmip/registries (KMIP 1.4 + 2.0 additions, Thales kmip-go, MIT) plus the
KMIP 2.1 additions listed below (tag and enumeration numbers from the KMIP 2.1 specification). The generated
modules are committed so the server never reads these files at run time; re-run this script only when the tables
change:  python tools/gen_registry.py ../shared/vectors/kmip/registries
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from pathlib import Path

# KMIP 2.1 additions (tags 0x420166..0x420176) and vendor extension tags we serve.
TAGS_21 = {
    "Object Groups": 0x420166,
    "Object Types": 0x420167,
    "Constraints": 0x420168,
    "Constraint": 0x420169,
    "Rotate Interval": 0x42016A,
    "Rotate Automatic": 0x42016B,
    "Rotate Offset": 0x42016C,
    "Rotate Date": 0x42016D,
    "Rotate Generation": 0x42016E,
    "Rotate Name": 0x42016F,
    "Rotate Name Value": 0x420170,
    "Rotate Name Type": 0x420171,
    "Rotate Latest": 0x420172,
    "Asynchronous Request": 0x420173,
    "Submission Date": 0x420174,
    "Processing Stage": 0x420175,
    "Asynchronous Correlation Values": 0x420176,
}

# Enumerations that KMIP 2.1 added or extended beyond the 2.0 table.
ENUMS_21: dict[str, dict[str, int]] = {
    "Processing Stage": {"Submitted": 1, "In Process": 2, "Completed": 3},
    "Rotate Name Type": {"Uninterpreted Text String": 1, "URI": 2},
    "Operation": {
        "Set Defaults": 0x36,
        "Set Constraints": 0x37,
        "Get Constraints": 0x38,
        "Query Asynchronous Requests": 0x39,
        "Process": 0x3A,
        "Ping": 0x3B,
    },
    "Result Reason": {"Unknown Object Group": 0x4A, "Constraint Violation": 0x4B, "Duplicate Process Request": 0x4C},
    "Key Format Type": {"PKCS#10": 0x17},
    "Validity Indicator": {"Valid": 1, "Invalid": 2, "Unknown": 3},
    "Batch Error Continuation Option": {"Continue": 1, "Stop": 2, "Undo": 3},
}
ENUM_TAGS_21 = {"Processing Stage": ["Processing Stage"], "Rotate Name Type": ["Rotate Name Type"]}

# Vendor values served for compatibility with the Cosmian clients (extension range, or numbers they use).
VENDOR_VALUES: dict[str, dict[str, int]] = {
    "Block Cipher Mode": {"GCMSIV": 0x80000002},
    "Cryptographic Algorithm": {"ML-KEM-512": 0x39, "ML-KEM-768": 0x3A, "ML-KEM-1024": 0x3B},
    "Key Format Type": {"PKCS#12 Legacy": 0x88800001, "PKCS#7": 0x88800002},
    "Recommended Curve": {"CURVEED25519": 0x80000001, "CURVEED448": 0x80000002},
    "Certificate Type": {"PKCS#7": 0x80000001},
}

# How the Cosmian clients spell values (their Rust variant names, matched exactly by their JSON parser).
# Enumerations listed here drop the underscores of the OASIS name (SHA_256 -> SHA256, PKCS_1 -> PKCS1).
COSMIAN_SQUASHED = {
    "Hashing Algorithm", "Key Format Type", "Recommended Curve", "Key Compression Type", "Link Type",
    "Certificate Type", "Certificate Request Type", "Digital Signature Algorithm", "Wrapping Method", "Operation",
    "Block Cipher Mode", "Cryptographic Algorithm", "Profile Name",
}
# Enumerations whose Cosmian names keep the specification's words apart with '_' (Item_Not_Found).
COSMIAN_WORDS = {"Result Reason", "State", "Object Group Member", "Attestation Type"}
COSMIAN_OVERRIDES: dict[str, dict[str, str]] = {
    "Cryptographic Algorithm": {
        "DES3": "THREE_DES",
        "McEliece": "Page166Of230McEliece",
        "MLKEM_512": "MLKEM_512",
        "MLKEM_768": "MLKEM_768",
        "MLKEM_1024": "MLKEM_1024",
    },
    "Key Format Type": {"PKCS_12Legacy": "Pkcs12Legacy"},
    "Padding Method": {"ANSIX9_23": "ANSI_X923", "PKCS1V1_5": "PKCS1v15", "X9_31": "X931"},
    "RNG Algorithm": {"ANSIX9_31": "ANSI_X931", "ANSIX9_62": "ANSI_X962"},
    "Alternative Name Type": {"X_500DistinguishedName": "X500DirectoryName"},
    "Derivation Method": {"AsymmetricKey": "Asymmetric_Key", "AWSSignatureVersion4": "AWS_Signature_Version_4"},
    "Unique Identifier": {
        "ReKey": "Rekey",
        "ReCertify": "Recertify",
        "ReKeyKeyPair": "RekeyKeyPair",
        "ReKeyKeyPairPrivateKey": "RekeyKeyPairPrivateKey",
        "ReKeyKeyPairPublicKey": "RekeyKeyPairPublicKey",
    },
}


def cosmian_name(enum_name: str, spec_text: str, oasis: str) -> str | None:
    override = COSMIAN_OVERRIDES.get(enum_name, {}).get(oasis)
    if override:
        return override
    if enum_name in COSMIAN_SQUASHED and "_" in oasis:
        return oasis.replace("_", "")
    if enum_name in COSMIAN_WORDS and " " in spec_text.strip():
        return "_".join(normalise(w) for w in spec_text.split())
    return None

# CryptographicUsageMask bits that KMIP 2.0 added.
MASK_BITS_20 = {
    "Cryptographic Usage Mask": {
        "Authenticate": 0x00100000,
        "Unrestricted": 0x00200000,
        "FPE Encrypt": 0x00400000,
        "FPE Decrypt": 0x00800000,
    }
}

# Spellings in the source tables that differ from the KMIP specification text.
NAME_FIXES = {f"SHA-3-{n}": f"SHA3-{n}" for n in (224, 256, 384, 512)}

# Enumerations whose values are other tags rather than a table of their own.
EXTRA_ENUM_TAGS = {
    "Hashing Algorithm": ["Hashing Algorithm", "Mask Generator Hashing Algorithm"],
}


def normalise(text: str) -> str:
    """The six normalisation rules of the KMIP XML/JSON profiles (spec text -> tag or enum name)."""
    s = re.sub(r"[()\[\]]", " ", text)
    s = re.sub(r"[^\w\s](?=[A-Za-z])", " ", s)
    s = re.sub(r"[^\w\s]", "_", s)
    words = s.split()
    if not words:
        return ""
    m = re.match(r"^(\d+)(.*)$", words[0])
    if m and m.group(2):
        words[0] = m.group(2) + m.group(1)
    return "".join(w[:1].upper() + w[1:] for w in words)


def as_int(v: int | str) -> int:
    return int(v, 16) if isinstance(v, str) else int(v)


def load(reg_dir: Path) -> tuple[dict, dict, dict, dict]:
    tags: dict[str, int] = {}
    enums: dict[str, dict[str, int]] = {}
    enum_tags: dict[str, list[str]] = {}
    masks: dict[str, dict[str, int]] = {}
    for name in ("thalesgroup_kmip-go_kmip_1_4.json", "thalesgroup_kmip-go_kmip_2_0_additions.json"):
        data = json.loads((reg_dir / name).read_text())
        for k, v in data["tags"].items():
            if k.strip().lower() == "reserved":
                continue
            tags[k] = as_int(v)
        for e in data["enums"]:
            if "values" not in e:
                continue
            table = enums.setdefault(e["name"], {})
            for k, v in e["values"].items():
                table[NAME_FIXES.get(k.strip(), k.strip())] = as_int(v)
            enum_tags[e["name"]] = list(e.get("tags") or [e["name"]])
        for m in data["masks"]:
            table = masks.setdefault(m["name"], {})
            for k, v in m["values"].items():
                table[k.strip()] = as_int(v)
    tags.update(TAGS_21)
    for name, values in ENUMS_21.items():
        enums.setdefault(name, {}).update(values)
        enum_tags.setdefault(name, ENUM_TAGS_21.get(name, [name]))
    for name, values in VENDOR_VALUES.items():
        enums[name].update(values)
    for name, values in MASK_BITS_20.items():
        masks[name].update(values)
    for name, tag_names in EXTRA_ENUM_TAGS.items():
        enum_tags[name] = tag_names
    return tags, enums, enum_tags, masks


HEADER = '"""Generated by tools/gen_registry.py from the KMIP tag and enumeration tables. Do not edit."""\n\n'


def main() -> None:
    reg_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/vectors/kmip/registries")
    out_dir = Path(__file__).resolve().parent.parent / "kms" / "kmip"
    tags, enums, enum_tags, masks = load(reg_dir)

    norm_tags: dict[str, int] = {}
    for k, v in sorted(tags.items(), key=lambda kv: kv[1]):
        n = normalise(k)
        if n in norm_tags and norm_tags[n] != v:
            raise SystemExit(f"tag name clash {n}")
        norm_tags[n] = v
    lines = [HEADER, "from enum import IntEnum\n\n\nclass Tag(IntEnum):\n"]
    lines.append('    """Every KMIP tag we know, by its normalised name."""\n\n')
    for n, v in sorted(norm_tags.items(), key=lambda kv: kv[1]):
        lines.append(f"    {n} = 0x{v:06X}\n")
    lines.append("\n\n# The specification text name of each tag: KMIP 1.x names attributes this way.\n")
    lines.append("TEXT_NAMES: dict[int, str] = {\n")
    for text, v in sorted(tags.items(), key=lambda kv: kv[1]):
        lines.append(f"    0x{v:06X}: {text!r},\n")
    lines.append("}\n")
    (out_dir / "tags.py").write_text("".join(lines))

    lines = [HEADER, "from enum import IntEnum, IntFlag\n\n"]
    tag_map: list[str] = []
    cosmian: list[str] = []
    for ename in sorted(enums, key=normalise):
        cls = normalise(ename)
        values = enums[ename]
        if not values:
            continue
        lines.append(f"\nclass {cls}(IntEnum):\n")
        seen: set[str] = set()
        for k, v in sorted(values.items(), key=lambda kv: kv[1]):
            n = normalise(k)
            if keyword.iskeyword(n):
                n += "_"  # the wire name is without the underscore (see kms.kmip.registry)
            if n in seen:
                continue
            seen.add(n)
            lines.append(f"    {n} = 0x{v:08X}\n")
            alt = cosmian_name(ename, k, n.rstrip("_"))
            if alt and alt != n.rstrip("_"):
                cosmian.append(f"    ({cls}, 0x{v:08X}): {alt!r},\n")
        lines.append("\n")
        for t in enum_tags.get(ename, [ename]):
            tn = normalise(t)
            if tn in norm_tags:
                tag_map.append(f"    0x{norm_tags[tn]:06X}: {cls},  # {tn}\n")
    mask_map: list[str] = []
    for mname in sorted(masks, key=normalise):
        cls = normalise(mname)
        lines.append(f"\nclass {cls}(IntFlag):\n")
        for k, v in sorted(masks[mname].items(), key=lambda kv: kv[1]):
            lines.append(f"    {normalise(k)} = 0x{v:08X}\n")
        lines.append("\n")
        tn = normalise(mname)
        if tn in norm_tags:
            mask_map.append(f"    0x{norm_tags[tn]:06X}: {cls},  # {tn}\n")
    lines.append("\n# Enumeration class for each tag whose value is an Enumeration.\n")
    lines.append("ENUM_FOR_TAG: dict[int, type[IntEnum]] = {\n")
    lines.extend(sorted(tag_map))
    lines.append("}\n\n# Mask class for each Integer tag that holds a bit mask.\n")
    lines.append("MASK_FOR_TAG: dict[int, type[IntFlag]] = {\n")
    lines.extend(sorted(mask_map))
    lines.append("}\n\n# Cosmian client spellings of values whose OASIS name they do not accept.\n")
    lines.append("COSMIAN_NAMES: dict[tuple[type[IntEnum], int], str] = {\n")
    lines.extend(cosmian)
    lines.append("}\n")
    (out_dir / "enums.py").write_text("".join(lines))
    print(f"{len(norm_tags)} tags, {len(enums)} enumerations, {len(masks)} masks")


if __name__ == "__main__":
    main()
