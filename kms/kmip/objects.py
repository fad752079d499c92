"""Managed objects (KMIP 2.1 §2.2): key blocks and the object structures that carry them."""

from __future__ import annotations

from kms.kmip import schema as s
from kms.kmip.attributes import Attributes, CryptographicParameters
from kms.kmip.enums import (
    CertificateRequestType,
    CertificateType,
    CryptographicAlgorithm,
    EncodingOption,
    KeyCompressionType,
    KeyFormatType,
    ObjectType,
    SecretDataType,
    SplitKeyMethod,
    WrappingMethod,
)
from kms.kmip.errors import invalid_message
from kms.kmip.schema import Struct, kmip
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType


@kmip(Tag.EncryptionKeyInformation)
class EncryptionKeyInformation(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier, required=True)
    cryptographic_parameters: CryptographicParameters | None = s.struct(CryptographicParameters)


@kmip(Tag.MACSignatureKeyInformation)
class MACSignatureKeyInformation(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier, required=True)
    cryptographic_parameters: CryptographicParameters | None = s.struct(CryptographicParameters)


@kmip(Tag.KeyWrappingData)
class KeyWrappingData(Struct):
    wrapping_method: WrappingMethod = s.enum(Tag.WrappingMethod, WrappingMethod, required=True)
    encryption_key_information: EncryptionKeyInformation | None = s.struct(EncryptionKeyInformation)
    mac_signature_key_information: MACSignatureKeyInformation | None = s.struct(MACSignatureKeyInformation)
    mac_signature: bytes | None = s.byte_string(Tag.MACSignature)
    iv_counter_nonce: bytes | None = s.byte_string(Tag.IVCounterNonce)
    encoding_option: EncodingOption | None = s.enum(Tag.EncodingOption, EncodingOption)


@kmip(Tag.KeyWrappingSpecification)
class KeyWrappingSpecification(Struct):
    wrapping_method: WrappingMethod = s.enum(Tag.WrappingMethod, WrappingMethod, required=True)
    encryption_key_information: EncryptionKeyInformation | None = s.struct(EncryptionKeyInformation)
    mac_signature_key_information: MACSignatureKeyInformation | None = s.struct(MACSignatureKeyInformation)
    attribute_name: list[str] = s.text(Tag.AttributeName, multi=True)
    encoding_option: EncodingOption | None = s.enum(Tag.EncodingOption, EncodingOption)


@kmip(Tag.KeyValue)
class KeyValue(Struct):
    """Key material (a ByteString, or a structure for transparent formats) and optional attributes."""

    key_material: TTLV | None = s.raw(Tag.KeyMaterial)
    attributes: Attributes | None = s.struct(Attributes)
    other: list[TTLV] = s.extras()

    def material_bytes(self) -> bytes:
        if self.key_material is None:
            raise invalid_message("KeyValue has no KeyMaterial")
        if self.key_material.type is ItemType.ByteString:
            return self.key_material.value
        if self.key_material.type is ItemType.Structure:
            key = self.key_material.find(Tag.Key)
            if key is not None and key.type is ItemType.ByteString:  # TransparentSymmetricKey
                return key.value
        raise invalid_message("this key format has no raw key bytes")


@kmip(Tag.KeyBlock)
class KeyBlock(Struct):
    key_format_type: KeyFormatType = s.enum(Tag.KeyFormatType, KeyFormatType, required=True)
    key_compression_type: KeyCompressionType | None = s.enum(Tag.KeyCompressionType, KeyCompressionType)
    key_value: TTLV | None = s.raw(Tag.KeyValue)  # a KeyValue structure, or a ByteString when wrapped
    cryptographic_algorithm: CryptographicAlgorithm | None = s.enum(
        Tag.CryptographicAlgorithm, CryptographicAlgorithm
    )
    cryptographic_length: int | None = s.integer(Tag.CryptographicLength)
    key_wrapping_data: KeyWrappingData | None = s.struct(KeyWrappingData)

    def value(self) -> KeyValue:
        if self.key_value is None:
            raise invalid_message("KeyBlock has no KeyValue")
        if self.key_value.type is not ItemType.Structure:
            raise invalid_message("the key value is wrapped; unwrap it first")
        return s.decode(KeyValue, self.key_value)

    @classmethod
    def raw(
        cls,
        material: bytes,
        algorithm: CryptographicAlgorithm | None,
        length: int | None,
        key_format_type: KeyFormatType = KeyFormatType.Raw,
        attributes: Attributes | None = None,
    ) -> KeyBlock:
        if key_format_type == KeyFormatType.TransparentSymmetricKey:
            km = TTLV(Tag.KeyMaterial, ItemType.Structure, [TTLV(Tag.Key, ItemType.ByteString, material)])
        else:
            km = TTLV(Tag.KeyMaterial, ItemType.ByteString, material)
        kv = s.encode(KeyValue(key_material=km, attributes=attributes))
        return cls(
            key_format_type=key_format_type,
            key_value=kv,
            cryptographic_algorithm=algorithm,
            cryptographic_length=length,
        )


@kmip(Tag.SymmetricKey)
class SymmetricKey(Struct):
    key_block: KeyBlock = s.struct(KeyBlock, required=True)


@kmip(Tag.PrivateKey)
class PrivateKey(Struct):
    key_block: KeyBlock = s.struct(KeyBlock, required=True)


@kmip(Tag.PublicKey)
class PublicKey(Struct):
    key_block: KeyBlock = s.struct(KeyBlock, required=True)


@kmip(Tag.SplitKey)
class SplitKey(Struct):
    split_key_parts: int = s.integer(Tag.SplitKeyParts, required=True)
    key_part_identifier: int = s.integer(Tag.KeyPartIdentifier, required=True)
    split_key_threshold: int = s.integer(Tag.SplitKeyThreshold, required=True)
    split_key_method: SplitKeyMethod = s.enum(Tag.SplitKeyMethod, SplitKeyMethod, required=True)
    prime_field_size: int | None = s.big_integer(Tag.PrimeFieldSize)
    key_block: KeyBlock = s.struct(KeyBlock, required=True)


@kmip(Tag.SecretData)
class SecretData(Struct):
    secret_data_type: SecretDataType = s.enum(Tag.SecretDataType, SecretDataType, required=True)
    key_block: KeyBlock = s.struct(KeyBlock, required=True)


@kmip(Tag.OpaqueObject)
class OpaqueObject(Struct):
    opaque_data_type: int = s.enum_code(Tag.OpaqueDataType, required=True)
    opaque_data_value: bytes = s.byte_string(Tag.OpaqueDataValue, required=True)


@kmip(Tag.Certificate)
class Certificate(Struct):
    certificate_type: CertificateType = s.enum(Tag.CertificateType, CertificateType, required=True)
    certificate_value: bytes = s.byte_string(Tag.CertificateValue, required=True)


@kmip(Tag.CertificateRequest)
class CertificateRequest(Struct):
    certificate_request_type: CertificateRequestType = s.enum(
        Tag.CertificateRequestType, CertificateRequestType, required=True
    )
    certificate_request_value: bytes = s.byte_string(Tag.CertificateRequestValue, required=True)


@kmip(Tag.PGPKey)
class PGPKey(Struct):
    pgp_key_version: int = s.integer(Tag.PGPKeyVersion, required=True)
    key_block: KeyBlock = s.struct(KeyBlock, required=True)


ManagedObject = (
    SymmetricKey
    | PrivateKey
    | PublicKey
    | SplitKey
    | SecretData
    | OpaqueObject
    | Certificate
    | CertificateRequest
    | PGPKey
)

OBJECT_CLASSES: dict[ObjectType, type] = {
    ObjectType.SymmetricKey: SymmetricKey,
    ObjectType.PrivateKey: PrivateKey,
    ObjectType.PublicKey: PublicKey,
    ObjectType.SplitKey: SplitKey,
    ObjectType.SecretData: SecretData,
    ObjectType.OpaqueObject: OpaqueObject,
    ObjectType.Certificate: Certificate,
    ObjectType.CertificateRequest: CertificateRequest,
    ObjectType.PGPKey: PGPKey,
}
OBJECT_BY_TAG: dict[int, type] = {cls.TAG: cls for cls in OBJECT_CLASSES.values()}  # type: ignore[attr-defined]
OBJECT_TYPE_BY_CLASS: dict[type, ObjectType] = {cls: ot for ot, cls in OBJECT_CLASSES.items()}


def object_type_of(obj: object) -> ObjectType:
    return OBJECT_TYPE_BY_CLASS[type(obj)]


def key_block_of(obj: object) -> KeyBlock | None:
    return getattr(obj, "key_block", None)


def resolve_object(item: object, object_type: ObjectType | None) -> object:
    """Typed managed object from a decoded field (already typed, or a Cosmian "Object" item)."""
    if isinstance(item, TTLV):
        if object_type is None:
            raise invalid_message("an Object needs an ObjectType next to it")
        return s.decode(OBJECT_CLASSES[object_type], item)
    return item
