"""`ckms attributes get|set|delete`: read and change an object's attributes.

`get` prints attributes as a JSON object keyed by KMIP tag name, with the user tags under "Tag", because that
is what Cosmian's tool prints and what scripts built on it read. `set` sends one SetAttribute per attribute,
as KMIP 2.1 defines SetAttribute on a single attribute.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from ckms import output
from ckms.commands.common import KEY_USAGES, TAG_ATTRIBUTE, VENDOR, hex_option, object_uid, parse_enum, usage_mask
from ckms.context import CliContext, pass_cli
from ckms.errors import CliError
from kms.kmip import json_codec, registry, schema
from kms.kmip.attributes import MULTI_VALUED, Attributes, VendorAttribute
from kms.kmip.enums import CryptographicAlgorithm
from kms.kmip.errors import KmipError
from kms.kmip.payloads import AttributeHolder, DeleteAttributeRequest, SetAttributeRequest
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType

V4_VENDOR_WRAPPER = "VendorAttributes"  # Cosmian 4.x wrapper of vendor attributes (a pseudo tag in kms.kmip)
TAGS_KEY = "Tag"  # where the user tags appear in `attributes get` output (Cosmian's Tag::Tag)

_TAG_BY_SQUASHED: dict[str, Tag] = {m.name.replace("_", "").lower(): m for m in Tag}


@click.group("attributes")
def attributes() -> None:
    """Get, set or delete the KMIP attributes of an object"""


# --------------------------------------------------------------------------------------- name resolution


def _squash(text: str) -> str:
    return text.replace("-", "").replace("_", "").replace(" ", "").lower()


def _vendor_reference(vendor: str, name: str) -> TTLV:
    return TTLV.struct(
        Tag.AttributeReference,
        [
            TTLV(Tag.VendorIdentification, ItemType.TextString, vendor),
            TTLV(Tag.AttributeName, ItemType.TextString, name),
        ],
    )


def attribute_reference(name: str) -> tuple[TTLV, str]:
    """(AttributeReference to send, key under which `get` shows that attribute) for a user-given name.

    Accepts KMIP tag names in any case or kebab form (`CryptographicAlgorithm`, `cryptographic-algorithm`),
    `tag`/`tags` for the user tags, and `VENDOR:NAME` for another vendor attribute.
    """
    squashed = _squash(name)
    if squashed in ("tag", "tags"):
        return _vendor_reference(VENDOR, TAG_ATTRIBUTE), TAGS_KEY
    tag = _TAG_BY_SQUASHED.get(squashed)
    if tag is not None:
        return TTLV(Tag.AttributeReference, ItemType.Enumeration, int(tag)), tag.name
    if ":" in name:
        vendor, attr = name.split(":", 1)
        if vendor and attr:
            return _vendor_reference(vendor, attr), f"{vendor}:{attr}"
    raise CliError(f"unknown attribute {name!r}: give a KMIP attribute name, 'tag', or VENDOR:NAME")


# ----------------------------------------------------------------------------------------- JSON rendering


def _scalar(item: TTLV) -> Any:
    t = item.type
    if t is ItemType.Structure:
        return _structure(item.children())
    if t is ItemType.Enumeration:
        return registry.enum_name(item.tag, item.value) or f"0x{item.value:08X}"
    if t is ItemType.ByteString:
        return item.value.hex().upper()
    if t is ItemType.DateTime:
        return json_codec.format_datetime(item.value)
    return item.value


def _structure(children: Sequence[TTLV]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in children:
        key = registry.tag_name(child.tag)
        value = _scalar(child)
        if key in out:
            if not isinstance(out[key], list):
                out[key] = [out[key]]
            out[key].append(value)
        else:
            out[key] = value
    return out


def _vendor_entry(va: VendorAttribute) -> tuple[str, Any]:
    value = va.attribute_value
    if va.vendor_identification == VENDOR and va.attribute_name == TAG_ATTRIBUTE and value is not None:
        text = value.value.decode("utf-8", "replace") if value.type is ItemType.ByteString else value.value
        try:
            tags = json.loads(text)
        except (TypeError, ValueError):
            tags = text
        return TAGS_KEY, tags
    return f"{va.vendor_identification or ''}:{va.attribute_name}", None if value is None else _scalar(value)


def attributes_json(attrs: Attributes | TTLV) -> dict[str, Any]:
    """Attributes as a JSON-ready mapping, in the order received: multi-valued ones are lists, tags under "Tag".

    Takes the typed form or the raw Attributes structure (which keeps the server's order, and carries vendor
    attributes either as KMIP 2.1 `Attribute` items or inside Cosmian 4.x `VendorAttributes` wrappers).
    """
    item = schema.encode(attrs) if isinstance(attrs, Attributes) else attrs
    out: dict[str, Any] = {}
    for child in item.children():
        if registry.tag_name(child.tag) == V4_VENDOR_WRAPPER:
            vendor_items = child.children()
        elif child.tag == Tag.Attribute and child.type is ItemType.Structure:
            vendor_items = [child]
        else:
            key = registry.tag_name(child.tag)
            value = _scalar(child)
            if child.tag in MULTI_VALUED:
                out.setdefault(key, []).append(value)
            else:
                out[key] = value
            continue
        for vi in vendor_items:
            try:
                va = schema.decode(VendorAttribute, vi)
            except KmipError:
                out.setdefault(registry.tag_name(vi.tag), []).append(_scalar(vi))
                continue
            key, value = _vendor_entry(va)
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------------- get


def _selector_options(f: Any) -> Any:
    f = click.option("-t", "--tag", "tags", metavar="TAG", multiple=True,
                     help="Tag to use to retrieve the object when no id is specified. "
                          "To specify multiple tags, use the option multiple times")(f)
    f = click.option("-i", "--id", "object_id", metavar="ID",
                     help="The unique identifier of the object. If not specified, tags should be specified")(f)
    return f


@attributes.command("get")
@_selector_options
@click.option("-a", "--attribute", "names", metavar="NAME", multiple=True,
              help="The attribute to retrieve (KMIP name, or 'tag'). To specify multiple attributes, use the "
                   "option multiple times. All attributes when none is given")
@pass_cli
def get(cli: CliContext, object_id: str | None, tags: tuple[str, ...], names: tuple[str, ...]) -> None:
    """Get the KMIP attributes of an object"""
    uid = object_uid(object_id, tags, "--id")
    refs = [attribute_reference(n) for n in names]
    resp = cli.client().get_attributes(uid, [r for r, _ in refs])
    found = attributes_json(resp.attributes) if resp.attributes is not None else {}
    if refs:  # a server may return more than asked; show what was asked, in the order asked
        found = {key: found[key] for _, key in refs if key in found}
    uid = resp.unique_identifier or uid
    output.emit(
        f"Attributes for {uid}",
        unique_identifier=uid,
        lines=json.dumps(found, indent=2).splitlines(),
        data={"attributes": found},
    )


# ---------------------------------------------------------------------------------------------------- set


def _holder(item: TTLV) -> AttributeHolder:
    return AttributeHolder(items=[item])


@attributes.command("set")
@_selector_options
@click.option("--activation-date", type=click.IntRange(min=0), metavar="MS",
              help="Activation date, in milliseconds since the Unix epoch")
@click.option("-a", "--cryptographic-algorithm", "algorithm", metavar="ALGORITHM",
              help="Cryptographic algorithm (aes, chacha20, rsa, ...)")
@click.option("--cryptographic-length", type=click.IntRange(min=1), help="Cryptographic length, in bits")
@click.option("-u", "--key-usage", "key_usages", type=click.Choice(list(KEY_USAGES)), multiple=True,
              help="Allowed operations. To specify several, use the option multiple times")
@click.option("-v", "--vendor-identification", help="Vendor of a vendor attribute (with -n and --attribute-value)")
@click.option("-n", "--attribute-name", help="Name of a vendor attribute")
@click.option("--attribute-value", callback=hex_option, help="Value of a vendor attribute, as hex bytes")
@pass_cli
def set_(cli: CliContext, object_id: str | None, tags: tuple[str, ...], activation_date: int | None,
         algorithm: str | None, cryptographic_length: int | None, key_usages: tuple[str, ...],
         vendor_identification: str | None, attribute_name: str | None, attribute_value: bytes | None) -> None:
    """Set KMIP attributes of an object (one SetAttribute call per attribute)"""
    uid = object_uid(object_id, tags, "--id")
    items: list[TTLV] = []
    if activation_date is not None:
        items.append(TTLV(Tag.ActivationDate, ItemType.DateTime, activation_date // 1000))
    if algorithm is not None:
        alg = parse_enum(CryptographicAlgorithm, algorithm, "cryptographic algorithm")
        items.append(TTLV(Tag.CryptographicAlgorithm, ItemType.Enumeration, int(alg)))
    if cryptographic_length is not None:
        items.append(TTLV(Tag.CryptographicLength, ItemType.Integer, cryptographic_length))
    mask = usage_mask(key_usages)
    if mask is not None:
        items.append(TTLV(Tag.CryptographicUsageMask, ItemType.Integer, mask))
    vendor = (vendor_identification, attribute_name, attribute_value)
    if any(v is not None for v in vendor):
        if any(v is None for v in vendor):
            raise CliError("a vendor attribute needs --vendor-identification, --attribute-name and --attribute-value")
        va = VendorAttribute(
            vendor_identification=vendor_identification,
            attribute_name=attribute_name,  # type: ignore[arg-type]
            attribute_value=TTLV(Tag.AttributeValue, ItemType.ByteString, attribute_value),
        )
        items.append(schema.encode(va))
    if not items:
        raise CliError("no attribute to set: give at least one attribute option")
    client = cli.client()
    for item in items:
        resp = client.set_attribute(SetAttributeRequest(unique_identifier=uid, new_attribute=_holder(item)))
        # Follow the object the server resolved, so a tag selection names the same object on every call.
        uid = resp.unique_identifier or uid
    output.emit("Attribute set successfully", unique_identifier=uid)


# ------------------------------------------------------------------------------------------------- delete


@attributes.command("delete")
@_selector_options
@click.option("-a", "--attribute", "names", metavar="NAME", multiple=True, required=True,
              help="The attribute to delete (KMIP name, 'tag', or VENDOR:NAME). Repeat for several")
@pass_cli
def delete(cli: CliContext, object_id: str | None, tags: tuple[str, ...], names: tuple[str, ...]) -> None:
    """Delete KMIP attributes of an object"""
    uid = object_uid(object_id, tags, "--id")
    refs = [attribute_reference(n)[0] for n in names]
    client = cli.client()
    for ref in refs:
        resp = client.delete_attribute(DeleteAttributeRequest(unique_identifier=uid, attribute_reference=ref))
        uid = resp.unique_identifier or uid
    output.emit("Attribute deleted successfully", unique_identifier=uid)
