"""KMIP 2.1 attribute structures and the `Attributes` container.

Attributes we act on are typed fields; any other attribute a client sends is kept verbatim (`other`) so it is
stored and returned unchanged rather than rejected or lost.
"""

from __future__ import annotations

from kms.kmip import schema as s
from kms.kmip.enums import (
    AlternativeNameType,
    BlockCipherMode,
    CertificateType,
    CryptographicAlgorithm,
    DigitalSignatureAlgorithm,
    HashingAlgorithm,
    KeyFormatType,
    KeyRoleType,
    LinkType,
    MaskGenerator,
    NameType,
    ObjectGroupMember,
    ObjectType,
    PaddingMethod,
    ProtectionLevel,
    RecommendedCurve,
    RevocationReasonCode,
    State,
    UsageLimitsUnit,
)
from kms.kmip.schema import Struct, kmip
from kms.kmip.tags import Tag
from kms.kmip.ttlv import PSEUDO_VENDOR_ATTRIBUTES, TTLV


@kmip(Tag.Name)
class Name(Struct):
    name_value: str = s.text(Tag.NameValue, required=True)
    name_type: NameType = s.enum(Tag.NameType, NameType)


@kmip(Tag.Link)
class Link(Struct):
    link_type: LinkType = s.enum(Tag.LinkType, LinkType, required=True)
    linked_object_identifier: str = s.text(Tag.LinkedObjectIdentifier, required=True)


@kmip(Tag.Digest)
class Digest(Struct):
    hashing_algorithm: HashingAlgorithm = s.enum(Tag.HashingAlgorithm, HashingAlgorithm)
    digest_value: bytes | None = s.byte_string(Tag.DigestValue)
    key_format_type: KeyFormatType | None = s.enum(Tag.KeyFormatType, KeyFormatType)


@kmip(Tag.AlternativeName)
class AlternativeName(Struct):
    alternative_name_value: str = s.text(Tag.AlternativeNameValue, required=True)
    alternative_name_type: AlternativeNameType = s.enum(Tag.AlternativeNameType, AlternativeNameType)


@kmip(Tag.ApplicationSpecificInformation)
class ApplicationSpecificInformation(Struct):
    application_namespace: str = s.text(Tag.ApplicationNamespace, required=True)
    application_data: str | None = s.text(Tag.ApplicationData)


@kmip(Tag.CryptographicDomainParameters)
class CryptographicDomainParameters(Struct):
    qlength: int | None = s.integer(Tag.Qlength)
    recommended_curve: RecommendedCurve | None = s.enum(Tag.RecommendedCurve, RecommendedCurve)


@kmip(Tag.CryptographicParameters)
class CryptographicParameters(Struct):
    block_cipher_mode: BlockCipherMode | None = s.enum(Tag.BlockCipherMode, BlockCipherMode)
    padding_method: PaddingMethod | None = s.enum(Tag.PaddingMethod, PaddingMethod)
    hashing_algorithm: HashingAlgorithm | None = s.enum(Tag.HashingAlgorithm, HashingAlgorithm)
    key_role_type: KeyRoleType | None = s.enum(Tag.KeyRoleType, KeyRoleType)
    digital_signature_algorithm: DigitalSignatureAlgorithm | None = s.enum(
        Tag.DigitalSignatureAlgorithm, DigitalSignatureAlgorithm
    )
    cryptographic_algorithm: CryptographicAlgorithm | None = s.enum(
        Tag.CryptographicAlgorithm, CryptographicAlgorithm
    )
    random_iv: bool | None = s.boolean(Tag.RandomIV)
    iv_length: int | None = s.integer(Tag.IVLength)
    tag_length: int | None = s.integer(Tag.TagLength)
    fixed_field_length: int | None = s.integer(Tag.FixedFieldLength)
    invocation_field_length: int | None = s.integer(Tag.InvocationFieldLength)
    counter_length: int | None = s.integer(Tag.CounterLength)
    initial_counter_value: int | None = s.integer(Tag.InitialCounterValue)
    salt_length: int | None = s.integer(Tag.SaltLength)
    mask_generator: MaskGenerator | None = s.enum(Tag.MaskGenerator, MaskGenerator)
    mask_generator_hashing_algorithm: HashingAlgorithm | None = s.enum(
        Tag.MaskGeneratorHashingAlgorithm, HashingAlgorithm
    )
    p_source: bytes | None = s.byte_string(Tag.PSource)
    trailer_field: int | None = s.integer(Tag.TrailerField)


@kmip(Tag.RevocationReason)
class RevocationReason(Struct):
    revocation_reason_code: RevocationReasonCode = s.enum(Tag.RevocationReasonCode, RevocationReasonCode)
    revocation_message: str | None = s.text(Tag.RevocationMessage)


@kmip(Tag.UsageLimits)
class UsageLimits(Struct):
    usage_limits_total: int | None = s.long_integer(Tag.UsageLimitsTotal)
    usage_limits_count: int | None = s.long_integer(Tag.UsageLimitsCount)
    usage_limits_unit: UsageLimitsUnit | None = s.enum(Tag.UsageLimitsUnit, UsageLimitsUnit)


@kmip(Tag.Attribute)
class VendorAttribute(Struct):
    """A vendor (or 1.x style) attribute: VendorIdentification, AttributeName and an adjacently typed value."""

    vendor_identification: str | None = s.text(Tag.VendorIdentification)
    attribute_name: str = s.text(Tag.AttributeName, required=True)
    attribute_index: int | None = s.integer(Tag.AttributeIndex)
    attribute_value: TTLV | None = s.raw(Tag.AttributeValue)


@kmip(Tag.Attributes)
class Attributes(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    object_type: ObjectType | None = s.enum(Tag.ObjectType, ObjectType)
    cryptographic_algorithm: CryptographicAlgorithm | None = s.enum(
        Tag.CryptographicAlgorithm, CryptographicAlgorithm
    )
    cryptographic_length: int | None = s.integer(Tag.CryptographicLength)
    cryptographic_parameters: CryptographicParameters | None = s.struct(CryptographicParameters)
    cryptographic_domain_parameters: CryptographicDomainParameters | None = s.struct(CryptographicDomainParameters)
    cryptographic_usage_mask: int | None = s.integer(Tag.CryptographicUsageMask)
    certificate_type: CertificateType | None = s.enum(Tag.CertificateType, CertificateType)
    certificate_length: int | None = s.integer(Tag.CertificateLength)
    digital_signature_algorithm: DigitalSignatureAlgorithm | None = s.enum(
        Tag.DigitalSignatureAlgorithm, DigitalSignatureAlgorithm
    )
    digest: list[Digest] = s.struct(Digest, multi=True)
    key_format_type: KeyFormatType | None = s.enum(Tag.KeyFormatType, KeyFormatType)
    state: State | None = s.enum(Tag.State, State)
    initial_date: int | None = s.date_time(Tag.InitialDate)
    activation_date: int | None = s.date_time(Tag.ActivationDate)
    process_start_date: int | None = s.date_time(Tag.ProcessStartDate)
    protect_stop_date: int | None = s.date_time(Tag.ProtectStopDate)
    deactivation_date: int | None = s.date_time(Tag.DeactivationDate)
    destroy_date: int | None = s.date_time(Tag.DestroyDate)
    compromise_occurrence_date: int | None = s.date_time(Tag.CompromiseOccurrenceDate)
    compromise_date: int | None = s.date_time(Tag.CompromiseDate)
    revocation_reason: RevocationReason | None = s.struct(RevocationReason)
    archive_date: int | None = s.date_time(Tag.ArchiveDate)
    last_change_date: int | None = s.date_time(Tag.LastChangeDate)
    original_creation_date: int | None = s.date_time(Tag.OriginalCreationDate)
    name: list[Name] = s.struct(Name, multi=True)
    alternative_name: list[AlternativeName] = s.struct(AlternativeName, multi=True)
    link: list[Link] = s.struct(Link, multi=True)
    object_group: list[str] = s.text(Tag.ObjectGroup, multi=True)
    object_group_member: ObjectGroupMember | None = s.enum(Tag.ObjectGroupMember, ObjectGroupMember)
    application_specific_information: list[ApplicationSpecificInformation] = s.struct(
        ApplicationSpecificInformation, multi=True
    )
    contact_information: str | None = s.text(Tag.ContactInformation)
    description: str | None = s.text(Tag.Description)
    comment: str | None = s.text(Tag.Comment)
    usage_limits: UsageLimits | None = s.struct(UsageLimits)
    lease_time: int | None = s.interval(Tag.LeaseTime)
    sensitive: bool | None = s.boolean(Tag.Sensitive)
    always_sensitive: bool | None = s.boolean(Tag.AlwaysSensitive)
    extractable: bool | None = s.boolean(Tag.Extractable)
    never_extractable: bool | None = s.boolean(Tag.NeverExtractable)
    fresh: bool | None = s.boolean(Tag.Fresh)
    short_unique_identifier: bytes | None = s.byte_string(Tag.ShortUniqueIdentifier)
    protection_storage_mask: int | None = s.integer(Tag.ProtectionStorageMask)
    protection_level: ProtectionLevel | None = s.enum(Tag.ProtectionLevel, ProtectionLevel)
    protection_period: int | None = s.interval(Tag.ProtectionPeriod)
    quantum_safe: bool | None = s.boolean(Tag.QuantumSafe)
    vendor_attributes: list[VendorAttribute] = s.struct(VendorAttribute, multi=True)
    vendor_attributes_v4: list[TTLV] = s.raw(PSEUDO_VENDOR_ATTRIBUTES, multi=True)
    other: list[TTLV] = s.extras()

    def post_decode(self) -> None:
        # Cosmian 4.x: VendorAttributes{VendorAttributes{VendorIdentification, AttributeName, AttributeValue}...}
        for wrapper in self.vendor_attributes_v4:
            for item in wrapper.children():
                self.vendor_attributes.append(s.decode(VendorAttribute, item))
        self.vendor_attributes_v4 = []

    def is_empty(self) -> bool:
        return not self.other and all(getattr(self, f.attr) in (None, []) for f in self._fields_)


# Attributes that a client may not set or change: the server owns them (KMIP 2.1 §4, "Modifiable by client").
SERVER_OWNED = frozenset(
    {
        Tag.UniqueIdentifier,
        Tag.ObjectType,
        Tag.State,
        Tag.InitialDate,
        Tag.LastChangeDate,
        Tag.Digest,
        Tag.DestroyDate,
        Tag.CompromiseDate,
        Tag.CompromiseOccurrenceDate,
        Tag.RevocationReason,
        Tag.ArchiveDate,
        Tag.AlwaysSensitive,
        Tag.NeverExtractable,
        Tag.OriginalCreationDate,
        Tag.ShortUniqueIdentifier,
        Tag.CertificateLength,
        Tag.CertificateType,
        Tag.Fresh,
        Tag.KeyFormatType,
    }
)

# Attributes that may occur several times on one object.
MULTI_VALUED = frozenset(
    {
        Tag.Name,
        Tag.AlternativeName,
        Tag.Link,
        Tag.ObjectGroup,
        Tag.ApplicationSpecificInformation,
        Tag.Digest,
        Tag.Attribute,
    }
)
