"""Request and response payloads of every operation we serve, declared once for all codecs.

`PAYLOADS[operation]` gives the (request, response) classes. The structures are tagged RequestPayload /
ResponsePayload inside messages; bare Cosmian-style calls tag them with the operation name instead.
"""

from __future__ import annotations

from kms.kmip import schema as s
from kms.kmip.attributes import Attributes, CryptographicParameters, RevocationReason
from kms.kmip.enums import (
    InteropFunction,
    KeyCompressionType,
    KeyFormatType,
    KeyWrapType,
    ObjectGroupMember,
    ObjectType,
    Operation,
    QueryFunction,
    RevocationReasonCode,
    ValidityIndicator,
)
from kms.kmip.errors import invalid_message
from kms.kmip.objects import OBJECT_BY_TAG, KeyWrappingSpecification, resolve_object
from kms.kmip.schema import Struct, kmip
from kms.kmip.tags import Tag
from kms.kmip.ttlv import PSEUDO_CASCADE, PSEUDO_OBJECT, PSEUDO_REMOVE, TTLV, ItemType

REQ = Tag.RequestPayload
RESP = Tag.ResponsePayload


def _object_field(required: bool = False) -> object:
    return s.union(OBJECT_BY_TAG, tag=PSEUDO_OBJECT, required=required)


@kmip(Tag.ProtocolVersion)
class ProtocolVersion(Struct):
    protocol_version_major: int = s.integer(Tag.ProtocolVersionMajor, required=True)
    protocol_version_minor: int = s.integer(Tag.ProtocolVersionMinor, required=True)


# ----------------------------------------------------------------------------------------- object lifecycle


@kmip(REQ)
class CreateRequest(Struct):
    object_type: ObjectType = s.enum(Tag.ObjectType, ObjectType, required=True)
    attributes: Attributes = s.struct(Attributes, required=True)
    protection_storage_masks: TTLV | None = s.raw(Tag.ProtectionStorageMasks)


@kmip(RESP)
class CreateResponse(Struct):
    object_type: ObjectType = s.enum(Tag.ObjectType, ObjectType)
    unique_identifier: str = s.text(Tag.UniqueIdentifier)


@kmip(REQ)
class CreateKeyPairRequest(Struct):
    common_attributes: Attributes | None = s.struct(Attributes, tag=Tag.CommonAttributes)
    private_key_attributes: Attributes | None = s.struct(Attributes, tag=Tag.PrivateKeyAttributes)
    public_key_attributes: Attributes | None = s.struct(Attributes, tag=Tag.PublicKeyAttributes)
    common_protection_storage_masks: TTLV | None = s.raw(Tag.CommonProtectionStorageMasks)
    private_protection_storage_masks: TTLV | None = s.raw(Tag.PrivateProtectionStorageMasks)
    public_protection_storage_masks: TTLV | None = s.raw(Tag.PublicProtectionStorageMasks)


@kmip(RESP)
class CreateKeyPairResponse(Struct):
    private_key_unique_identifier: str = s.text(Tag.PrivateKeyUniqueIdentifier)
    public_key_unique_identifier: str = s.text(Tag.PublicKeyUniqueIdentifier)


@kmip(REQ)
class RegisterRequest(Struct):
    object_type: ObjectType = s.enum(Tag.ObjectType, ObjectType, required=True)
    attributes: Attributes = s.struct(Attributes, required=True)
    object: object = _object_field(required=True)
    protection_storage_masks: TTLV | None = s.raw(Tag.ProtectionStorageMasks)

    def post_decode(self) -> None:
        self.object = resolve_object(self.object, self.object_type)


@kmip(RESP)
class RegisterResponse(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier)


@kmip(REQ)
class ImportRequest(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier, required=True)
    object_type: ObjectType = s.enum(Tag.ObjectType, ObjectType, required=True)
    replace_existing: bool | None = s.boolean(Tag.ReplaceExisting)
    key_wrap_type: KeyWrapType | None = s.enum(Tag.KeyWrapType, KeyWrapType)
    attributes: Attributes | None = s.struct(Attributes)
    object: object = _object_field(required=True)

    def post_decode(self) -> None:
        self.object = resolve_object(self.object, self.object_type)


@kmip(RESP)
class ImportResponse(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier)


@kmip(REQ)
class ReKeyRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    offset: int | None = s.interval(Tag.Offset)
    attributes: Attributes | None = s.struct(Attributes)
    protection_storage_masks: TTLV | None = s.raw(Tag.ProtectionStorageMasks)


@kmip(RESP)
class ReKeyResponse(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier)


@kmip(REQ)
class UidRequest(Struct):
    """Payload of operations that only name an object (Activate, Destroy, GetAttributeList, ...)."""

    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)


@kmip(RESP)
class UidResponse(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier)


@kmip(REQ)
class DestroyRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    remove: bool | None = s.boolean(PSEUDO_REMOVE)  # Cosmian: also delete the object's record
    cascade: bool | None = s.boolean(PSEUDO_CASCADE)  # Cosmian: also destroy linked objects (not acted on)


@kmip(REQ)
class RevokeRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    revocation_reason: object = s.raw(Tag.RevocationReason)
    compromise_occurrence_date: int | None = s.date_time(Tag.CompromiseOccurrenceDate)

    def post_decode(self) -> None:
        rr = self.revocation_reason
        if isinstance(rr, TTLV):
            if rr.type is ItemType.TextString:  # the Cosmian clients send a bare message
                self.revocation_reason = RevocationReason(RevocationReasonCode.Unspecified, rr.value)
            elif rr.type is ItemType.Structure:
                self.revocation_reason = s.decode(RevocationReason, rr)
            else:
                raise invalid_message(f"RevokeRequest.RevocationReason: unexpected {rr.type.name}")


@kmip(REQ)
class GetRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    key_format_type: KeyFormatType | None = s.enum(Tag.KeyFormatType, KeyFormatType)
    key_wrap_type: KeyWrapType | None = s.enum(Tag.KeyWrapType, KeyWrapType)
    key_compression_type: KeyCompressionType | None = s.enum(Tag.KeyCompressionType, KeyCompressionType)
    key_wrapping_specification: KeyWrappingSpecification | None = s.struct(KeyWrappingSpecification)


@kmip(RESP)
class GetResponse(Struct):
    object_type: ObjectType = s.enum(Tag.ObjectType, ObjectType)
    unique_identifier: str = s.text(Tag.UniqueIdentifier)
    object: object = _object_field()

    def post_decode(self) -> None:
        self.object = resolve_object(self.object, self.object_type)


@kmip(REQ)
class ExportRequest(GetRequest):
    pass


@kmip(RESP)
class ExportResponse(Struct):
    object_type: ObjectType = s.enum(Tag.ObjectType, ObjectType)
    unique_identifier: str = s.text(Tag.UniqueIdentifier)
    attributes: Attributes | None = s.struct(Attributes)
    object: object = _object_field()

    def post_decode(self) -> None:
        self.object = resolve_object(self.object, self.object_type)


# ----------------------------------------------------------------------------------------------- attributes


@kmip(REQ)
class GetAttributesRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    attribute_reference: list[TTLV] = s.raw(Tag.AttributeReference, multi=True, accept=(Tag.AttributeName,))


@kmip(RESP)
class GetAttributesResponse(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier)
    attributes: TTLV = s.raw(Tag.Attributes)  # TTLV: returned in the order the client asked for them


@kmip(RESP)
class GetAttributeListResponse(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier)
    attribute_reference: list[TTLV] = s.raw(Tag.AttributeReference, multi=True)


@kmip(Tag.NewAttribute)
class AttributeHolder(Struct):
    """NewAttribute / CurrentAttribute: a wrapper around exactly one attribute item."""

    items: list[TTLV] = s.extras()

    def post_decode(self) -> None:
        if len(self.items) != 1:
            raise invalid_message(f"an attribute wrapper must hold exactly one attribute, got {len(self.items)}")

    @property
    def item(self) -> TTLV:
        return self.items[0]


@kmip(REQ)
class AddAttributeRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    new_attribute: AttributeHolder = s.struct(AttributeHolder, tag=Tag.NewAttribute, required=True)


@kmip(REQ)
class SetAttributeRequest(AddAttributeRequest):
    pass


@kmip(REQ)
class ModifyAttributeRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    current_attribute: AttributeHolder | None = s.struct(AttributeHolder, tag=Tag.CurrentAttribute)
    new_attribute: AttributeHolder = s.struct(AttributeHolder, tag=Tag.NewAttribute, required=True)


@kmip(REQ)
class DeleteAttributeRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    current_attribute: AttributeHolder | None = s.struct(AttributeHolder, tag=Tag.CurrentAttribute)
    attribute_reference: TTLV | None = s.raw(Tag.AttributeReference)


# ------------------------------------------------------------------------------------------ locate / check


@kmip(REQ)
class LocateRequest(Struct):
    maximum_items: int | None = s.integer(Tag.MaximumItems)
    offset_items: int | None = s.integer(Tag.OffsetItems)
    storage_status_mask: int | None = s.integer(Tag.StorageStatusMask)
    object_group_member: ObjectGroupMember | None = s.enum(Tag.ObjectGroupMember, ObjectGroupMember)
    # Kept as TTLV: in Locate a date attribute given twice is a range, which Attributes cannot hold.
    attributes: TTLV | None = s.raw(Tag.Attributes)


@kmip(RESP)
class LocateResponse(Struct):
    located_items: int | None = s.integer(Tag.LocatedItems)
    unique_identifier: list[str] = s.text(Tag.UniqueIdentifier, multi=True)


@kmip(REQ)
class CheckRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    usage_limits_count: int | None = s.long_integer(Tag.UsageLimitsCount)
    cryptographic_usage_mask: int | None = s.integer(Tag.CryptographicUsageMask)
    lease_time: int | None = s.interval(Tag.LeaseTime)


@kmip(RESP)
class CheckResponse(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    usage_limits_count: int | None = s.long_integer(Tag.UsageLimitsCount)
    cryptographic_usage_mask: int | None = s.integer(Tag.CryptographicUsageMask)
    lease_time: int | None = s.interval(Tag.LeaseTime)


# ---------------------------------------------------------------------------------------------------- crypto


@kmip(REQ)
class EncryptRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    cryptographic_parameters: CryptographicParameters | None = s.struct(CryptographicParameters)
    data: bytes | None = s.byte_string(Tag.Data)
    iv_counter_nonce: bytes | None = s.byte_string(Tag.IVCounterNonce)
    correlation_value: bytes | None = s.byte_string(Tag.CorrelationValue)
    init_indicator: bool | None = s.boolean(Tag.InitIndicator)
    final_indicator: bool | None = s.boolean(Tag.FinalIndicator)
    authenticated_encryption_additional_data: bytes | None = s.byte_string(Tag.AuthenticatedEncryptionAdditionalData)


@kmip(RESP)
class EncryptResponse(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier)
    data: bytes | None = s.byte_string(Tag.Data)
    iv_counter_nonce: bytes | None = s.byte_string(Tag.IVCounterNonce)
    correlation_value: bytes | None = s.byte_string(Tag.CorrelationValue)
    authenticated_encryption_tag: bytes | None = s.byte_string(Tag.AuthenticatedEncryptionTag)


@kmip(REQ)
class DecryptRequest(EncryptRequest):
    authenticated_encryption_tag: bytes | None = s.byte_string(Tag.AuthenticatedEncryptionTag)


@kmip(RESP)
class DecryptResponse(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier)
    data: bytes | None = s.byte_string(Tag.Data)
    correlation_value: bytes | None = s.byte_string(Tag.CorrelationValue)


@kmip(REQ)
class MACRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    cryptographic_parameters: CryptographicParameters | None = s.struct(CryptographicParameters)
    data: bytes | None = s.byte_string(Tag.Data)
    correlation_value: bytes | None = s.byte_string(Tag.CorrelationValue)
    init_indicator: bool | None = s.boolean(Tag.InitIndicator)
    final_indicator: bool | None = s.boolean(Tag.FinalIndicator)


@kmip(RESP)
class MACResponse(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier)
    mac_data: bytes | None = s.byte_string(Tag.MACData)
    correlation_value: bytes | None = s.byte_string(Tag.CorrelationValue)


@kmip(REQ)
class MACVerifyRequest(Struct):
    unique_identifier: str | None = s.text(Tag.UniqueIdentifier)
    cryptographic_parameters: CryptographicParameters | None = s.struct(CryptographicParameters)
    data: bytes | None = s.byte_string(Tag.Data)
    mac_data: bytes | None = s.byte_string(Tag.MACData)
    correlation_value: bytes | None = s.byte_string(Tag.CorrelationValue)
    init_indicator: bool | None = s.boolean(Tag.InitIndicator)
    final_indicator: bool | None = s.boolean(Tag.FinalIndicator)


@kmip(RESP)
class MACVerifyResponse(Struct):
    unique_identifier: str = s.text(Tag.UniqueIdentifier)
    validity_indicator: ValidityIndicator = s.enum(Tag.ValidityIndicator, ValidityIndicator)
    correlation_value: bytes | None = s.byte_string(Tag.CorrelationValue)


@kmip(REQ)
class HashRequest(Struct):
    cryptographic_parameters: CryptographicParameters = s.struct(CryptographicParameters, required=True)
    data: bytes | None = s.byte_string(Tag.Data)
    correlation_value: bytes | None = s.byte_string(Tag.CorrelationValue)
    init_indicator: bool | None = s.boolean(Tag.InitIndicator)
    final_indicator: bool | None = s.boolean(Tag.FinalIndicator)


@kmip(RESP)
class HashResponse(Struct):
    data: bytes | None = s.byte_string(Tag.Data)
    correlation_value: bytes | None = s.byte_string(Tag.CorrelationValue)


@kmip(REQ)
class RNGRetrieveRequest(Struct):
    data_length: int = s.integer(Tag.DataLength, required=True)


@kmip(RESP)
class RNGRetrieveResponse(Struct):
    data: bytes = s.byte_string(Tag.Data)


@kmip(REQ)
class RNGSeedRequest(Struct):
    data: bytes = s.byte_string(Tag.Data, required=True)


@kmip(RESP)
class RNGSeedResponse(Struct):
    data_length: int = s.integer(Tag.DataLength)


# ------------------------------------------------------------------------------------------- server / misc


@kmip(REQ)
class QueryRequest(Struct):
    query_function: list[QueryFunction] = s.enum(Tag.QueryFunction, QueryFunction, multi=True)


@kmip(Tag.ServerInformation)
class ServerInformation(Struct):
    server_name: str | None = s.text(Tag.ServerName)
    server_serial_number: str | None = s.text(Tag.ServerSerialNumber)
    server_version: str | None = s.text(Tag.ServerVersion)
    product_name: str | None = s.text(Tag.ProductName)
    other: list[TTLV] = s.extras()


@kmip(RESP)
class QueryResponse(Struct):
    operation: list[Operation] = s.enum(Tag.Operation, Operation, multi=True)
    object_type: list[ObjectType] = s.enum(Tag.ObjectType, ObjectType, multi=True)
    vendor_identification: str | None = s.text(Tag.VendorIdentification)
    server_information: ServerInformation | None = s.struct(ServerInformation)
    other: list[TTLV] = s.extras()


@kmip(REQ)
class DiscoverVersionsRequest(Struct):
    protocol_version: list[ProtocolVersion] = s.struct(ProtocolVersion, multi=True)


@kmip(RESP)
class DiscoverVersionsResponse(Struct):
    protocol_version: list[ProtocolVersion] = s.struct(ProtocolVersion, multi=True)


@kmip(REQ)
class InteropRequest(Struct):
    interop_function: InteropFunction = s.enum(Tag.InteropFunction, InteropFunction, required=True)
    interop_identifier: str | None = s.text(Tag.InteropIdentifier)


@kmip(REQ)
class LogRequest(Struct):
    log_message: str = s.text(Tag.LogMessage, required=True)


@kmip(RESP)
class EmptyResponse(Struct):
    pass


PAYLOADS: dict[Operation, tuple[type, type]] = {
    Operation.Create: (CreateRequest, CreateResponse),
    Operation.CreateKeyPair: (CreateKeyPairRequest, CreateKeyPairResponse),
    Operation.Register: (RegisterRequest, RegisterResponse),
    Operation.Import: (ImportRequest, ImportResponse),
    Operation.ReKey: (ReKeyRequest, ReKeyResponse),
    Operation.Get: (GetRequest, GetResponse),
    Operation.Export: (ExportRequest, ExportResponse),
    Operation.GetAttributes: (GetAttributesRequest, GetAttributesResponse),
    Operation.GetAttributeList: (UidRequest, GetAttributeListResponse),
    Operation.AddAttribute: (AddAttributeRequest, UidResponse),
    Operation.SetAttribute: (SetAttributeRequest, UidResponse),
    Operation.ModifyAttribute: (ModifyAttributeRequest, UidResponse),
    Operation.DeleteAttribute: (DeleteAttributeRequest, UidResponse),
    Operation.Locate: (LocateRequest, LocateResponse),
    Operation.Check: (CheckRequest, CheckResponse),
    Operation.Activate: (UidRequest, UidResponse),
    Operation.Revoke: (RevokeRequest, UidResponse),
    Operation.Destroy: (DestroyRequest, UidResponse),
    Operation.Encrypt: (EncryptRequest, EncryptResponse),
    Operation.Decrypt: (DecryptRequest, DecryptResponse),
    Operation.MAC: (MACRequest, MACResponse),
    Operation.MACVerify: (MACVerifyRequest, MACVerifyResponse),
    Operation.Hash: (HashRequest, HashResponse),
    Operation.RNGRetrieve: (RNGRetrieveRequest, RNGRetrieveResponse),
    Operation.RNGSeed: (RNGSeedRequest, RNGSeedResponse),
    Operation.Query: (QueryRequest, QueryResponse),
    Operation.DiscoverVersions: (DiscoverVersionsRequest, DiscoverVersionsResponse),
    Operation.Interop: (InteropRequest, EmptyResponse),
    Operation.Log: (LogRequest, EmptyResponse),
}
