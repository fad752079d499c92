"""`ckms locate`: find objects by tags and attributes (KMIP Locate)."""

from __future__ import annotations

import click

from ckms import output
from ckms.commands.common import parse_enum, tag_attribute
from ckms.context import CliContext, pass_cli
from kms.kmip import schema
from kms.kmip.attributes import Attributes
from kms.kmip.enums import CryptographicAlgorithm, KeyFormatType, ObjectType
from kms.kmip.payloads import LocateRequest


@click.command("locate")
@click.option("-t", "--tag", "tags", metavar="TAG", multiple=True,
              help="User tags or system tags to locate the object. To specify multiple tags, use the option "
                   "multiple times")
@click.option("-a", "--algorithm", metavar="ALGORITHM",
              help="Cryptographic algorithm (aes, chacha20, rsa, ec, ...)")
@click.option("-l", "--cryptographic-length", type=click.IntRange(min=1), help="Cryptographic length (in bits)")
@click.option("-o", "--object-type", metavar="OBJECT_TYPE",
              help="Object type (symmetric-key, private-key, public-key, certificate, secret-data, ...)")
@click.option("-f", "--key-format-type", metavar="KEY_FORMAT_TYPE",
              help="Key format type (raw, transparent-symmetric-key, pkcs8, ...)")
@pass_cli
def locate(cli: CliContext, tags: tuple[str, ...], algorithm: str | None, cryptographic_length: int | None,
           object_type: str | None, key_format_type: str | None) -> None:
    """Locate cryptographic objects inside the KMS.

    All given criteria must match; an object matches tags when it carries all of them.
    """
    attrs = Attributes(
        cryptographic_algorithm=parse_enum(CryptographicAlgorithm, algorithm, "algorithm") if algorithm else None,
        cryptographic_length=cryptographic_length,
        object_type=parse_enum(ObjectType, object_type, "object type") if object_type else None,
        key_format_type=parse_enum(KeyFormatType, key_format_type, "key format type") if key_format_type else None,
    )
    if tags:
        attrs.vendor_attributes.append(tag_attribute(tags))
    # KMIP 2.1 makes Attributes mandatory in Locate: an empty structure means "everything I may see".
    resp = cli.client().locate(LocateRequest(attributes=schema.encode(attrs)))
    ids = list(resp.unique_identifier)
    if output.json_mode():
        output.emit(None, data={"unique_identifiers": ids})
    elif ids:
        output.emit("List of unique identifiers:", lines=ids)
    else:
        output.emit("No object found.")
