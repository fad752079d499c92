"""The engine: one entry point per request shape, dispatch to one module per operation, object access helpers.

`Kms.handle_message` serves a RequestMessage (batches, ID placeholder, BatchErrorContinuationOption,
MaximumResponseSize) and `Kms.handle_bare` a Cosmian-style bare operation. Both run inside one store
transaction; failures are KmipErrors mapped to result reasons here, never exceptions escaping to HTTP.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable

from kms.core.context import RequestContext
from kms.core.lifecycle import DESTROYED, check_usage_limits
from kms.core.managed import ManagedObject, ObjectCache, copy_object, new_version, to_stored
from kms.core.streams import StreamRegistry
from kms.core.tags import parse_tag_identifier
from kms.kmip import binary, compat, schema
from kms.kmip.enums import (
    BatchErrorContinuationOption,
    Operation,
    ResultReason,
    ResultStatus,
)
from kms.kmip.errors import KmipError
from kms.kmip.messages import RequestMessage, ResponseBatchItem, ResponseHeader, ResponseMessage
from kms.kmip.payloads import PAYLOADS, ProtocolVersion
from kms.kmip.tags import Tag
from kms.kmip.ttlv import PSEUDO_BASE_RESPONSE, TTLV, ItemType
from kms.store.base import (
    CorruptObjectError,
    DuplicateError,
    ObjectStore,
    Query,
    ReadOnlySession,
    StoreError,
    TransientStoreError,
)

log = logging.getLogger("kms.core")

SUPPORTED_VERSIONS = ((2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0))
RETRIES = 3  # attempts of a request whose transaction hit lock contention or a concurrent update


@dataclasses.dataclass(slots=True)
class ServerIdentity:
    vendor_identification: str = "cosmian"
    server_name: str = "zt-kms"
    version: str = "0.1.0"


class _Rollback(Exception):
    """Internal: abort the transaction after the response is known."""


class Kms:
    def __init__(
        self,
        store: ObjectStore,
        *,
        identity: ServerIdentity | None = None,
        clock: Callable[[], float] = time.time,
        cache_capacity: int = 10_000,
    ) -> None:
        from kms.core.operations import HANDLERS  # late import: operations import this module

        self.store = store
        self.identity = identity or ServerIdentity()
        self.clock = clock
        self.cache = ObjectCache(cache_capacity if store.cacheable else 0)
        self.streams = StreamRegistry(clock=clock)
        self.handlers = HANDLERS

    @property
    def vendor(self) -> str:
        return self.identity.vendor_identification

    # ------------------------------------------------------------------------------------------ entry points

    def handle_bare(self, operation: Operation, payload: TTLV, user: str) -> TTLV:
        """Serve one Cosmian-style bare operation; returns the response payload tagged "<Op>Response"."""
        handler = self.handlers.get(operation)
        if handler is None:
            raise KmipError(ResultReason.OperationNotSupported, f"operation {operation.name} is not supported")
        req = schema.decode(PAYLOADS[operation][0], payload)
        write = handler[1]
        failures = 0
        while True:
            try:
                return self._bare_attempt(operation, handler[0], write, req, user)
            except ReadOnlySession:
                write = True  # the operation turned out to write: run it again holding the write lock
            except TransientStoreError as exc:
                failures += 1
                if failures == RETRIES:
                    raise _store_failure(exc) from exc
            except StoreError as exc:
                raise _store_failure(exc) from exc

    def _bare_attempt(self, operation: Operation, run: Callable, write: bool, req: object, user: str) -> TTLV:
        failure: KmipError | None = None
        try:
            with self.store.session(write=write) as session:
                ctx = RequestContext(
                    user=user, session=session, now=int(self.clock()), activate_on_create=True, cosmian_dialect=True
                )
                try:
                    resp = run(self, req, ctx)
                except KmipError as exc:
                    failure = exc
                    raise _Rollback() from None
                out = schema.encode(resp, PSEUDO_BASE_RESPONSE + operation)
        except _Rollback:
            assert failure is not None
            raise failure from None
        self._after_commit(ctx)
        return out

    def handle_message(self, message: TTLV, user: str) -> TTLV:
        """Serve a RequestMessage; always returns a ResponseMessage (errors become failed batch items)."""
        now = int(self.clock())
        try:
            req = schema.decode(RequestMessage, message)
        except KmipError as exc:
            return self._message_failure(now, (2, 1), exc)
        header = req.request_header
        version = (header.protocol_version.protocol_version_major, header.protocol_version.protocol_version_minor)
        if version not in SUPPORTED_VERSIONS:
            unsupported = KmipError(ResultReason.UnsupportedProtocolVersion, f"protocol version {version} unsupported")
            return self._message_failure(now, (2, 1), unsupported)
        write = any(self._writes(bi.operation) for bi in req.batch_item)
        failures = 0
        while True:
            try:
                results = self._message_attempt(req, user, now, version, write)
                break
            except ReadOnlySession:
                write = True  # some item turned out to write: run the batch again holding the write lock
            except TransientStoreError as exc:
                failures += 1
                if failures == RETRIES:
                    return self._message_failure(now, version, _store_failure(exc))
            except StoreError as exc:
                return self._message_failure(now, version, _store_failure(exc))
        return self._response(now, version, header.client_correlation_value, results)

    # ------------------------------------------------------------------------------------------ internals

    def _message_attempt(
        self, req: RequestMessage, user: str, now: int, version: tuple[int, int], write: bool
    ) -> list[ResponseBatchItem]:
        items = req.batch_item
        option = req.request_header.batch_error_continuation_option or BatchErrorContinuationOption.Stop
        results: list[ResponseBatchItem] = []
        undo = False
        header = req.request_header
        try:
            with self.store.session(write=write) as session:
                ctx = RequestContext(user=user, session=session, now=now, protocol_version=version)
                multi = len(items) > 1
                for bi in items:
                    item = self._run_item(bi, ctx, savepoint=multi)
                    results.append(item)
                    if item.result_status == ResultStatus.OperationFailed:
                        if option == BatchErrorContinuationOption.Undo:
                            undo = True
                            raise _Rollback()
                        if option == BatchErrorContinuationOption.Stop:
                            if not multi:
                                raise _Rollback()
                            break
                limit = header.maximum_response_size
                if limit is not None:
                    size = binary.encoded_length(self._response(now, version, header.client_correlation_value, results))
                    if size > limit:
                        # The client cannot receive the results, so nothing the batch did may stay.
                        for r in results:
                            r.result_status = ResultStatus.OperationFailed
                            r.result_reason = ResultReason.ResponseTooLarge
                            r.result_message = f"the response ({size} bytes) exceeds MaximumResponseSize ({limit})"
                            r.response_payload = None
                        raise _Rollback()
        except _Rollback:
            if undo:
                for r in results[:-1]:
                    if r.result_status == ResultStatus.Success:
                        r.result_status = ResultStatus.OperationUndone
            return results
        self._after_commit(ctx)
        return results

    def _writes(self, op_item: TTLV) -> bool:
        if op_item.type is not ItemType.Enumeration:
            return False
        handler = self.handlers.get(op_item.value)  # type: ignore[call-overload]
        return bool(handler and handler[1])

    def _run_item(self, bi: object, ctx: RequestContext, savepoint: bool) -> ResponseBatchItem:
        op_item: TTLV = bi.operation  # type: ignore[attr-defined]
        out = ResponseBatchItem(unique_batch_item_id=bi.unique_batch_item_id, result_status=ResultStatus.Success)  # type: ignore[attr-defined]
        try:
            if op_item.type is not ItemType.Enumeration:
                raise KmipError(ResultReason.InvalidMessage, "Operation must be an Enumeration")
            try:
                operation = Operation(op_item.value)
            except ValueError:
                raise KmipError(
                    ResultReason.OperationNotSupported, f"unknown operation 0x{op_item.value:08X}"
                ) from None
            out.operation = operation
            handler = self.handlers.get(operation)
            if handler is None:
                raise KmipError(ResultReason.OperationNotSupported, f"operation {operation.name} is not supported")
            run, _ = handler
            payload = bi.request_payload or TTLV(Tag.RequestPayload, ItemType.Structure, [])  # type: ignore[attr-defined]
            legacy = ctx.protocol_version < (2, 0)
            if legacy or compat.has_v1_forms(payload):
                payload = compat.request_to_v2(operation, payload)
            req = schema.decode(PAYLOADS[operation][0], payload)
            if savepoint:
                with ctx.session.savepoint():
                    resp = run(self, req, ctx)
            else:
                resp = run(self, req, ctx)
            encoded = schema.encode(resp, Tag.ResponsePayload)
            if legacy:
                encoded = compat.response_to_v1(operation, encoded, ctx.protocol_version)
            out.response_payload = encoded
        except KmipError as exc:
            out.result_status = ResultStatus.OperationFailed
            out.result_reason = compat.reason_for(ctx.protocol_version, exc.reason)
            out.result_message = exc.message
        return out

    def _response(
        self, now: int, version: tuple[int, int], correlation: str | None, items: list[ResponseBatchItem]
    ) -> TTLV:
        header = ResponseHeader(
            protocol_version=ProtocolVersion(*version),
            time_stamp=now,
            client_correlation_value=correlation,
            batch_count=len(items),
        )
        return schema.encode(ResponseMessage(response_header=header, batch_item=items))

    def failure_message(self, exc: KmipError) -> TTLV:
        """A ResponseMessage for a request that could not even be decoded."""
        return self._message_failure(int(self.clock()), (2, 1), exc)

    def _message_failure(self, now: int, version: tuple[int, int], exc: KmipError) -> TTLV:
        item = ResponseBatchItem(
            result_status=ResultStatus.OperationFailed, result_reason=exc.reason, result_message=exc.message
        )
        return self._response(now, version, None, [item])

    def _after_commit(self, ctx: RequestContext) -> None:
        for uid in ctx.touched:
            self.cache.forget(uid)
        if ctx.scrub:
            try:
                self.store.scrub()
            except StoreError:  # the data is committed; scrubbing is retried on the next destroy
                log.warning("could not scrub the database after a destroy")

    # ------------------------------------------------------------------------------------------ object access

    def resolve_uid(self, ctx: RequestContext, uid: str | None, *, include_destroyed: bool = False) -> str:
        """The one object an identifier names: a plain id, the ID placeholder, or a JSON list of tags."""
        if uid is None:
            if ctx.id_placeholder is None:
                raise KmipError(ResultReason.InvalidField, "no UniqueIdentifier given and no ID placeholder set")
            return ctx.id_placeholder
        tags = parse_tag_identifier(uid)
        if tags is None:
            return uid
        query = Query(owner=ctx.user, tags=tags)
        if not include_destroyed:
            query.exclude_states = [int(s) for s in DESTROYED]
        found = ctx.session.find(query)
        if not found:
            raise KmipError(ResultReason.ItemNotFound, f"no object has the tags {uid}")
        if len(found) > 1:
            raise KmipError(
                ResultReason.InvalidField, f"{len(found)} objects have the tags {uid}; use a unique identifier"
            )
        return found[0]

    def load(self, ctx: RequestContext, uid: str | None, *, include_destroyed: bool = True) -> ManagedObject:
        resolved = self.resolve_uid(ctx, uid, include_destroyed=include_destroyed)
        so = ctx.session.get(resolved)
        if so is None or so.owner != ctx.user:
            raise KmipError(ResultReason.ItemNotFound, f"object {resolved} not found")
        ctx.id_placeholder = resolved
        return self.cache.load(so)

    def new_uid(self) -> str:
        return str(uuid.uuid4())

    def insert(self, ctx: RequestContext, mo: ManagedObject) -> None:
        mo.version = new_version()
        try:
            ctx.session.insert(to_stored(mo))
        except DuplicateError:
            raise KmipError(ResultReason.ObjectAlreadyExists, f"an object with id {mo.uid} already exists") from None
        ctx.touched.add(mo.uid)
        ctx.id_placeholder = mo.uid

    def consume_usage(self, ctx: RequestContext, mo: ManagedObject, amount: int | None) -> None:
        """Charge a protect operation to the object's usage limits (a write, only for limited objects)."""
        if amount is None:
            return
        check_usage_limits(mo.attributes, amount, mo.uid)
        changed = copy_object(mo)
        limits = changed.attributes.usage_limits
        assert limits is not None and limits.usage_limits_count is not None
        limits.usage_limits_count -= amount
        self.save(ctx, changed)

    def mark_served(self, ctx: RequestContext, mo: ManagedObject) -> None:
        """The object left the server in clear: it is no longer Fresh (KMIP 2.1 Fresh attribute)."""
        if mo.attributes.fresh:
            changed = copy_object(mo)
            changed.attributes.fresh = False
            self.save(ctx, changed)

    def save(self, ctx: RequestContext, mo: ManagedObject) -> None:
        previous = mo.version
        mo.attributes.last_change_date = ctx.now
        mo.version = new_version()
        ctx.session.update(to_stored(mo), previous)  # ConflictError: the whole request is retried
        ctx.touched.add(mo.uid)


def _store_failure(exc: StoreError) -> KmipError:
    log.error("store failure: %s", exc)
    if isinstance(exc, CorruptObjectError):  # names the object; an operator must look at it, retrying won't help
        return KmipError(ResultReason.GeneralFailure, str(exc))
    return KmipError(ResultReason.GeneralFailure, "the key store is unavailable; retry later")
