"""`ckms sym`: symmetric keys (create, import, export, revoke, destroy, re-key) and server-side file encryption.

Option names, defaults and printed lines follow Cosmian's `ckms` 4.x so existing scripts and muscle memory
work unchanged against this server.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

import click

from ckms import output
from ckms.commands.common import (
    KEY_USAGES,
    hex_option,
    key_id_option,
    object_uid,
    tag_attribute,
    tag_option,
    usage_mask,
)
from ckms.context import CliContext, pass_cli
from ckms.errors import CliError
from ckms.file_crypto import ALGORITHMS, CHUNK_SIZE, decrypt_file, default_output, encrypt_file
from kms.kmip import json_codec, schema
from kms.kmip.attributes import Attributes
from kms.kmip.enums import CryptographicAlgorithm, CryptographicUsageMask, KeyFormatType, ObjectType
from kms.kmip.errors import KmipError
from kms.kmip.objects import KeyBlock, SymmetricKey
from kms.kmip.payloads import CreateRequest, ExportRequest, GetRequest, ImportRequest
from kms.kmip.registry import tag_name
from kms.kmip.tags import Tag
from kms.kmip.ttlv import PSEUDO_OBJECT, ItemType

SYMMETRIC_ALGORITHMS = {"aes": CryptographicAlgorithm.AES, "chacha20": CryptographicAlgorithm.ChaCha20}
# What a new symmetric key may do unless told otherwise: encrypt/decrypt data and wrap/unwrap other keys.
DEFAULT_USAGE = (
    CryptographicUsageMask.Encrypt
    | CryptographicUsageMask.Decrypt
    | CryptographicUsageMask.WrapKey
    | CryptographicUsageMask.UnwrapKey
)


@click.group()
def sym() -> None:
    """Manage symmetric keys; encrypt and decrypt files"""


@sym.group()
def keys() -> None:
    """Create, destroy, import, and export symmetric keys"""


# ------------------------------------------------------------------------------------------------- helpers


def _tags_with(attributes: Attributes, tags: tuple[str, ...]) -> None:
    """Replace the Cosmian tag attribute: tags given on the command line win over those read from a file."""
    if not tags:
        return
    attributes.vendor_attributes = [
        va
        for va in attributes.vendor_attributes
        if not (va.vendor_identification == "cosmian" and va.attribute_name == "tag")
    ]
    attributes.vendor_attributes.append(tag_attribute(tags))


def _symmetric_key_from_bytes(material: bytes, algorithm: CryptographicAlgorithm) -> SymmetricKey:
    block = KeyBlock.raw(material, algorithm, len(material) * 8, KeyFormatType.TransparentSymmetricKey)
    return SymmetricKey(key_block=block)


def _read_input(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {output.quoted(path)}: {exc.strerror or exc}") from None


def _write_key_file(path: Path, data: bytes) -> None:
    """Write exported key material readable by its owner only: a key file is a secret, whatever the umask."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
            fh.write(data)
    except OSError as exc:
        raise CliError(f"cannot write {output.quoted(path)}: {exc.strerror or exc}") from None


def _b64decode(text: bytes | str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CliError(f"{what} is not valid base64") from None


# -------------------------------------------------------------------------------------------------- create


@keys.command("create")
@click.option("-l", "--number-of-bits", "bits", type=click.IntRange(min=8), default=256, show_default=True,
              help="The length of the generated random key or salt in bits")
@click.option("-a", "--algorithm", type=click.Choice(list(SYMMETRIC_ALGORITHMS)), default="aes", show_default=True,
              help="The algorithm")
@tag_option("The tag to associate with the key. To specify multiple tags, use the option multiple times")
@click.option("-k", "--bytes-b64", "bytes_b64", help="The symmetric key bytes, base64 encoded (imported as is)")
@click.option("--sensitive", is_flag=True, help="The key will not be exportable in clear")
@click.argument("key_id", required=False)
@pass_cli
def create(cli: CliContext, bits: int, algorithm: str, tags: tuple[str, ...], bytes_b64: str | None,
           sensitive: bool, key_id: str | None) -> None:
    """Create a new symmetric key"""
    alg = SYMMETRIC_ALGORITHMS[algorithm]
    if bytes_b64 is not None:
        material = _b64decode(bytes_b64, "--bytes-b64")
        if not material:
            raise CliError("--bytes-b64 holds no key bytes")
        attrs = Attributes(
            cryptographic_algorithm=alg,
            cryptographic_length=len(material) * 8,
            cryptographic_usage_mask=int(DEFAULT_USAGE),
            object_type=ObjectType.SymmetricKey,
            sensitive=True if sensitive else None,
        )
        _tags_with(attrs, tags)
        uid = cli.client().import_object(
            ImportRequest(
                unique_identifier=key_id or "",
                object_type=ObjectType.SymmetricKey,
                attributes=attrs,
                object=_symmetric_key_from_bytes(material, alg),
            )
        ).unique_identifier
    else:
        if bits % 8:
            raise CliError("--number-of-bits must be a multiple of 8")
        attrs = Attributes(
            unique_identifier=key_id,
            cryptographic_algorithm=alg,
            cryptographic_length=bits,
            cryptographic_usage_mask=int(DEFAULT_USAGE),
            key_format_type=KeyFormatType.TransparentSymmetricKey,
            object_type=ObjectType.SymmetricKey,
            sensitive=True if sensitive else None,
        )
        _tags_with(attrs, tags)
        request = CreateRequest(object_type=ObjectType.SymmetricKey, attributes=attrs)
        uid = cli.client().create(request).unique_identifier
    output.emit("The symmetric key was successfully generated.", unique_identifier=uid, tags=tags)


# -------------------------------------------------------------------------------------------------- import


IMPORT_FORMATS = ("json-ttlv", "aes", "chacha20", "base64")


def _load_key_file(path: Path, key_format: str) -> tuple[SymmetricKey, Attributes]:
    """The key object to import and the attributes that go with it (from the file when it has some)."""
    raw = _read_input(path)
    if key_format == "json-ttlv":
        try:
            item = json_codec.loads(raw)
        except KmipError as exc:
            raise CliError(f"{output.quoted(path)} is not a JSON TTLV object: {exc.message}") from None
        if item.tag not in (PSEUDO_OBJECT, Tag.SymmetricKey):
            raise CliError(f"{output.quoted(path)} holds a {tag_name(item.tag)}, not a symmetric key")
        try:
            key = schema.decode(SymmetricKey, item)
        except KmipError as exc:
            raise CliError(f"{output.quoted(path)} is not a JSON TTLV symmetric key: {exc.message}") from None
        attrs = Attributes()
        block = key.key_block
        if block.key_value is not None and block.key_value.type is ItemType.Structure:
            try:
                kv_attrs = block.value().attributes
            except KmipError:
                kv_attrs = None
            if kv_attrs is not None:
                attrs = kv_attrs
        attrs.object_type = ObjectType.SymmetricKey
        if attrs.cryptographic_algorithm is None:
            attrs.cryptographic_algorithm = block.cryptographic_algorithm
        if attrs.cryptographic_length is None:
            attrs.cryptographic_length = block.cryptographic_length
        # Identity and lifecycle belong to the source server; the importing server assigns its own.
        attrs.unique_identifier = None
        attrs.state = None
        return key, attrs
    if key_format == "base64":
        material = _b64decode(raw.strip(), output.quoted(path))
        alg = CryptographicAlgorithm.AES
    else:
        material = raw
        alg = SYMMETRIC_ALGORITHMS[key_format]
    if not material:
        raise CliError(f"{output.quoted(path)} is empty")
    attrs = Attributes(
        cryptographic_algorithm=alg,
        cryptographic_length=len(material) * 8,
        cryptographic_usage_mask=int(DEFAULT_USAGE),
        object_type=ObjectType.SymmetricKey,
    )
    return _symmetric_key_from_bytes(material, alg), attrs


@keys.command("import")
@click.option("-f", "--key-format", type=click.Choice(IMPORT_FORMATS), default="json-ttlv", show_default=True,
              help="The format of the key: a JSON TTLV object, raw AES or ChaCha20 bytes, or base64 AES bytes")
@tag_option("The tag to associate with the key. To specify multiple tags, use the option multiple times")
@click.option("-r", "--replace", "replace_existing", is_flag=True,
              help="Replace an existing key under the same id")
@click.option("--key-usage", "key_usages", type=click.Choice(list(KEY_USAGES)), multiple=True,
              help="The cryptographic operations the key is allowed to perform")
@click.argument("key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("key_id", required=False)
@pass_cli
def import_key(cli: CliContext, key_format: str, tags: tuple[str, ...], replace_existing: bool,
               key_usages: tuple[str, ...], key_file: Path, key_id: str | None) -> None:
    """Import a symmetric key from a file"""
    key, attrs = _load_key_file(key_file, key_format)
    mask = usage_mask(key_usages)
    if mask is not None:
        attrs.cryptographic_usage_mask = mask
    _tags_with(attrs, tags)
    uid = cli.client().import_object(
        ImportRequest(
            unique_identifier=key_id or "",
            object_type=ObjectType.SymmetricKey,
            replace_existing=True if replace_existing else None,
            attributes=attrs,
            object=key,
        )
    ).unique_identifier
    output.emit(
        f"The SymmetricKey in file {output.quoted(key_file)} was imported with id: {uid}",
        unique_identifier=uid,
        tags=tags,
    )


# -------------------------------------------------------------------------------------------------- export


@keys.command("export")
@key_id_option("The key unique identifier stored in the KMS. If not specified, tags should be specified")
@tag_option()
@click.option("-f", "--key-format", type=click.Choice(["json-ttlv", "raw", "base64"]), default="json-ttlv",
              show_default=True, help="The format of the key file")
@click.option("-i", "--allow-revoked", is_flag=True,
              help="Allow exporting revoked and destroyed keys (the user must be the owner)")
@click.argument("key_file", type=click.Path(dir_okay=False, path_type=Path))
@pass_cli
def export_key(cli: CliContext, key_id: str | None, tags: tuple[str, ...], key_format: str, allow_revoked: bool,
               key_file: Path) -> None:
    """Export a symmetric key from the KMS"""
    uid = object_uid(key_id, tags)
    client = cli.client()
    # Get only serves Active objects; Export is KMIP's way to reach revoked or destroyed ones.
    resp = client.export(ExportRequest(unique_identifier=uid)) if allow_revoked else client.get(GetRequest(
        unique_identifier=uid))
    obj = resp.object
    object_type = resp.object_type.name if resp.object_type is not None else type(obj).__name__
    if key_format == "json-ttlv":
        data = json.dumps(json_codec.to_json(schema.encode(obj, PSEUDO_OBJECT)), indent=2).encode()
    else:
        block = getattr(obj, "key_block", None)
        if block is None:
            raise CliError(f"the object {resp.unique_identifier} ({object_type}) has no key bytes to export")
        try:
            material = block.value().material_bytes()
        except KmipError as exc:
            raise CliError(f"cannot export {resp.unique_identifier} as {key_format}: {exc.message}") from None
        data = material if key_format == "raw" else base64.b64encode(material)
    _write_key_file(key_file, data)
    output.emit(
        f"The key {resp.unique_identifier} of type {object_type} was exported to {output.quoted(key_file)}",
        unique_identifier=resp.unique_identifier,
        data={"file": str(key_file)},
    )


# ------------------------------------------------------------------------------------------ revoke/destroy


@keys.command("revoke")
@key_id_option("The key unique identifier of the key to revoke. If not specified, tags should be specified")
@tag_option()
@click.argument("revocation_reason")
@pass_cli
def revoke(cli: CliContext, key_id: str | None, tags: tuple[str, ...], revocation_reason: str) -> None:
    """Revoke a symmetric key"""
    uid = object_uid(key_id, tags)
    resp = cli.client().revoke(uid, revocation_reason)
    output.emit("Successfully revoked the object.", unique_identifier=resp.unique_identifier or uid)


@keys.command("destroy")
@key_id_option("The key unique identifier. If not specified, tags should be specified")
@tag_option()
@pass_cli
def destroy(cli: CliContext, key_id: str | None, tags: tuple[str, ...]) -> None:
    """Destroy a symmetric key"""
    uid = object_uid(key_id, tags)
    resp = cli.client().destroy(uid)
    output.emit("Successfully destroyed the key.", unique_identifier=resp.unique_identifier or uid)


@keys.command("re-key")
@key_id_option("The unique identifier of the key to refresh")
@tag_option()
@pass_cli
def re_key(cli: CliContext, key_id: str | None, tags: tuple[str, ...]) -> None:
    """Refresh an existing symmetric key: a new key replaces it, with the same attributes"""
    uid = object_uid(key_id, tags)
    resp = cli.client().rekey(uid)
    output.emit("The symmetric key was successfully refreshed.", unique_identifier=resp.unique_identifier)


# ----------------------------------------------------------------------------------------- encrypt/decrypt


def _crypto_options(verb: str) -> list[click.Option]:
    return [
        click.Option(["-k", "--key-id", "key_id"], metavar="KEY_ID",
                     help="The symmetric key unique identifier. If not specified, tags should be specified"),
        click.Option(["-t", "--tag", "tags"], metavar="TAG", multiple=True,
                     help="Tag to use to retrieve the key when no key id is specified. "
                          "To specify multiple tags, use the option multiple times"),
        click.Option(["-o", "--output-file", "output_file"], type=click.Path(dir_okay=False, path_type=Path),
                     help=f"The {verb} file path"),
        click.Option(["-d", "--data-encryption-algorithm", "algorithm"], type=click.Choice(list(ALGORITHMS)),
                     default="aes-gcm", show_default=True, help="The data encryption algorithm"),
        click.Option(["-a", "--authentication-data", "aad"], callback=hex_option,
                     help="Optional additional authentication data as a hex string"),
    ]


@sym.command("encrypt", params=[
    click.Argument(["file"], type=click.Path(exists=True, dir_okay=False, path_type=Path)),
    *_crypto_options("encrypted"),
])
@pass_cli
def encrypt(cli: CliContext, file: Path, key_id: str | None, tags: tuple[str, ...], output_file: Path | None,
            algorithm: str, aad: bytes | None) -> None:
    """Encrypt a file using a symmetric key.

    The key stays in the KMS: the data is sent to the server. Files larger than 1 MiB are streamed.
    The output is nonce || ciphertext || tag, as written by Cosmian's ckms.
    """
    uid = object_uid(key_id, tags)
    out = output_file or default_output(file, "enc")
    size = file.stat().st_size
    with output.progress_bar(size, "Encrypting", enabled=size > CHUNK_SIZE) as progress:
        encrypt_file(cli.client(), uid, ALGORITHMS[algorithm], file, out, aad, progress)
    output.emit(f"The encrypted file is available at {output.quoted(out)}", data={"file": str(out)})


@sym.command("decrypt", params=[
    click.Argument(["file"], type=click.Path(exists=True, dir_okay=False, path_type=Path)),
    *_crypto_options("decrypted"),
])
@pass_cli
def decrypt(cli: CliContext, file: Path, key_id: str | None, tags: tuple[str, ...], output_file: Path | None,
            algorithm: str, aad: bytes | None) -> None:
    """Decrypt a file using a symmetric key.

    The plaintext appears under the output name only once the server has authenticated the whole file.
    """
    uid = object_uid(key_id, tags)
    out = output_file or default_output(file, "plain")
    size = file.stat().st_size
    with output.progress_bar(size, "Decrypting", enabled=size > CHUNK_SIZE) as progress:
        decrypt_file(cli.client(), uid, ALGORITHMS[algorithm], file, out, aad, progress)
    output.emit(f"The decrypted file is available at {output.quoted(out)}", tags=tags, data={"file": str(out)})
