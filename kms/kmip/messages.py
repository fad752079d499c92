"""RequestMessage / ResponseMessage with batches (KMIP 2.1 §8).

Batch item payloads stay TTLV here: the operation decides their class, and an item whose payload cannot be
decoded must fail on its own without failing its siblings.
"""

from __future__ import annotations

from kms.kmip import schema as s
from kms.kmip.enums import (
    AttestationType,
    BatchErrorContinuationOption,
    Operation,
    ResultReason,
    ResultStatus,
)
from kms.kmip.payloads import ProtocolVersion
from kms.kmip.schema import Struct, kmip
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV


@kmip(Tag.RequestHeader)
class RequestHeader(Struct):
    protocol_version: ProtocolVersion = s.struct(ProtocolVersion, required=True)
    maximum_response_size: int | None = s.integer(Tag.MaximumResponseSize)
    client_correlation_value: str | None = s.text(Tag.ClientCorrelationValue)
    server_correlation_value: str | None = s.text(Tag.ServerCorrelationValue)
    asynchronous_indicator: TTLV | None = s.raw(Tag.AsynchronousIndicator)  # Boolean in 1.x, Enumeration in 2.x
    attestation_capable_indicator: bool | None = s.boolean(Tag.AttestationCapableIndicator)
    attestation_type: list[AttestationType] = s.enum(Tag.AttestationType, AttestationType, multi=True)
    authentication: TTLV | None = s.raw(Tag.Authentication)
    batch_error_continuation_option: BatchErrorContinuationOption | None = s.enum(
        Tag.BatchErrorContinuationOption, BatchErrorContinuationOption
    )
    batch_order_option: bool | None = s.boolean(Tag.BatchOrderOption)
    time_stamp: int | None = s.date_time(Tag.TimeStamp)
    batch_count: int = s.integer(Tag.BatchCount, required=True)
    other: list[TTLV] = s.extras()


@kmip(Tag.BatchItem)
class RequestBatchItem(Struct):
    operation: TTLV = s.raw(Tag.Operation, required=True)  # checked by the engine: unknown ones fail alone
    ephemeral: bool | None = s.boolean(Tag.Ephemeral)
    unique_batch_item_id: bytes | None = s.byte_string(Tag.UniqueBatchItemID)
    request_payload: TTLV | None = s.raw(Tag.RequestPayload)
    message_extension: list[TTLV] = s.raw(Tag.MessageExtension, multi=True)


@kmip(Tag.RequestMessage)
class RequestMessage(Struct):
    request_header: RequestHeader = s.struct(RequestHeader, required=True)
    batch_item: list[RequestBatchItem] = s.struct(RequestBatchItem, multi=True)


@kmip(Tag.ResponseHeader)
class ResponseHeader(Struct):
    protocol_version: ProtocolVersion = s.struct(ProtocolVersion, required=True)
    time_stamp: int = s.date_time(Tag.TimeStamp, required=True)
    nonce: TTLV | None = s.raw(Tag.Nonce)
    attestation_type: list[AttestationType] = s.enum(Tag.AttestationType, AttestationType, multi=True)
    client_correlation_value: str | None = s.text(Tag.ClientCorrelationValue)
    server_correlation_value: str | None = s.text(Tag.ServerCorrelationValue)
    batch_count: int = s.integer(Tag.BatchCount, required=True)


@kmip(Tag.BatchItem)
class ResponseBatchItem(Struct):
    operation: Operation | None = s.enum(Tag.Operation, Operation)
    unique_batch_item_id: bytes | None = s.byte_string(Tag.UniqueBatchItemID)
    result_status: ResultStatus = s.enum(Tag.ResultStatus, ResultStatus, required=True)
    result_reason: ResultReason | None = s.enum(Tag.ResultReason, ResultReason)
    result_message: str | None = s.text(Tag.ResultMessage)
    asynchronous_correlation_value: bytes | None = s.byte_string(Tag.AsynchronousCorrelationValue)
    response_payload: TTLV | None = s.raw(Tag.ResponsePayload)
    message_extension: list[TTLV] = s.raw(Tag.MessageExtension, multi=True)


@kmip(Tag.ResponseMessage)
class ResponseMessage(Struct):
    response_header: ResponseHeader = s.struct(ResponseHeader, required=True)
    batch_item: list[ResponseBatchItem] = s.struct(ResponseBatchItem, multi=True)


__all__ = [
    "RequestBatchItem",
    "RequestHeader",
    "RequestMessage",
    "ResponseBatchItem",
    "ResponseHeader",
    "ResponseMessage",
]
