"""Helpers shared by the commands: object selection by id or tags, tag attributes, option value parsing.

Cosmian lets any command name its object either by id or by a set of tags; on the wire a tag selection is the
JSON text of the tag list sent as the UniqueIdentifier, and the server resolves it. Keeping that rule here means
every command selects objects the same way and reports a missing selector with the same message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any, TypeVar

import click

from ckms.errors import CliError
from kms.kmip.attributes import VendorAttribute
from kms.kmip.enums import CryptographicUsageMask
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType

VENDOR = "cosmian"
TAG_ATTRIBUTE = "tag"

F = TypeVar("F", bound=Callable[..., Any])

# Cosmian's spelling of the usage flags (clap value names), mapped to the KMIP mask bits.
KEY_USAGES: dict[str, CryptographicUsageMask] = {
    "sign": CryptographicUsageMask.Sign,
    "verify": CryptographicUsageMask.Verify,
    "encrypt": CryptographicUsageMask.Encrypt,
    "decrypt": CryptographicUsageMask.Decrypt,
    "wrap-key": CryptographicUsageMask.WrapKey,
    "unwrap-key": CryptographicUsageMask.UnwrapKey,
    "mac-generate": CryptographicUsageMask.MACGenerate,
    "mac-verify": CryptographicUsageMask.MACVerify,
    "derive-key": CryptographicUsageMask.DeriveKey,
    "key-agreement": CryptographicUsageMask.KeyAgreement,
    "certificate-sign": CryptographicUsageMask.CertificateSign,
    "crl-sign": CryptographicUsageMask.CRLSign,
    "authenticate": CryptographicUsageMask.Authenticate,
    "unrestricted": CryptographicUsageMask.Unrestricted,
}


def tags_json(tags: Sequence[str]) -> str:
    """The tag list as Cosmian serialises it (serde_json: compact), for attribute values and selections."""
    return json.dumps(list(tags), separators=(",", ":"))


def object_uid(object_id: str | None, tags: Sequence[str], id_flag: str = "--key-id") -> str:
    """The UniqueIdentifier to send: the id if given, else the JSON tag list the server resolves."""
    if object_id:
        return object_id
    if tags:
        return tags_json(tags)
    raise CliError(f"Either {id_flag} or one or more --tag must be specified")


def tag_attribute(tags: Sequence[str]) -> VendorAttribute:
    return VendorAttribute(
        vendor_identification=VENDOR,
        attribute_name=TAG_ATTRIBUTE,
        attribute_value=TTLV(Tag.AttributeValue, ItemType.TextString, tags_json(tags)),
    )


def usage_mask(usages: Sequence[str]) -> int | None:
    if not usages:
        return None
    mask = 0
    for name in usages:
        mask |= KEY_USAGES[name]
    return mask


def _squash(text: str) -> str:
    return text.replace("-", "").replace("_", "").replace(" ", "").lower()


E = TypeVar("E", bound=IntEnum)


def parse_enum(cls: type[E], text: str, what: str) -> E:
    """An enum member from a kebab-case or CamelCase name (`symmetric-key`, `SymmetricKey`, `aes`)."""
    wanted = _squash(text)
    for member in cls:
        name = (member.name or "").rstrip("_")
        if _squash(name) == wanted:
            return member
    raise CliError(f"unknown {what} {text!r}")


def hex_option(_ctx: click.Context, param: click.Parameter, value: str | None) -> bytes | None:
    """Click callback: a hex string option as bytes (a usage error, exit 2, when it is not hex)."""
    if value is None:
        return None
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not hexadecimal", param=param) from None


def key_id_option(help_text: str = "The key unique identifier. If not specified, tags should be specified") -> Any:
    return click.option("-k", "--key-id", "key_id", metavar="KEY_ID", help=help_text)


def tag_option(help_text: str = "Tag to use to retrieve the key when no key id is specified. "
               "To specify multiple tags, use the option multiple times") -> Any:
    return click.option("-t", "--tag", "tags", metavar="TAG", multiple=True, help=help_text)
