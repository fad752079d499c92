"""Locate: identifiers of the caller's objects whose attributes match, with MaximumItems/OffsetItems paging.

Indexed attributes (type, algorithm, length, names, tags) are filtered in the database; the rest (state,
dates and their ranges, usage masks, links, vendor attributes, anything else) on the decoded candidates.
Destroyed objects are left out unless the query asks for that state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.attribute_edit import full_view
from kms.core.context import RequestContext
from kms.core.lifecycle import DESTROYED
from kms.core.managed import ManagedObject
from kms.core.tags import TAG_ATTRIBUTE, _decode_tag_value
from kms.kmip import schema
from kms.kmip.attributes import Name
from kms.kmip.enums import ResultReason
from kms.kmip.errors import KmipError
from kms.kmip.payloads import LocateRequest, LocateResponse
from kms.kmip.tags import Tag
from kms.kmip.ttlv import TTLV, ItemType
from kms.store.base import Query

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = False
_INDEXED = {Tag.ObjectType, Tag.CryptographicAlgorithm, Tag.CryptographicLength, Tag.Name}


def run(kms: Kms, req: LocateRequest, ctx: RequestContext) -> LocateResponse:
    query = Query(owner=ctx.user)
    residual: list[TTLV] = []
    dates: dict[int, list[int]] = {}
    items = req.attributes.children() if req.attributes is not None else []
    for item in items:
        if item.type is ItemType.DateTime:
            dates.setdefault(item.tag, []).append(item.value)
        elif item.tag == Tag.ObjectType and item.type is ItemType.Enumeration:
            query.object_type = item.value
        elif item.tag == Tag.CryptographicAlgorithm and item.type is ItemType.Enumeration:
            query.algorithm = item.value
        elif item.tag == Tag.CryptographicLength and item.type is ItemType.Integer:
            query.length = item.value
        elif item.tag == Tag.Name:
            query.names = [*query.names, schema.decode(Name, item).name_value]
        elif item.tag == Tag.Attribute and _is_tag_attr(item, kms.vendor):
            query.tags = [*query.tags, *_decode_tag_value(item.find(Tag.AttributeValue))]
        else:
            residual.append(item)
    for values in dates.values():
        if len(values) > 2:
            raise KmipError(ResultReason.InvalidField, "a date attribute may appear at most twice (a range) in Locate")
    wants_state = any(i.tag == Tag.State for i in residual)
    matched: list[str] = []
    for so in ctx.session.load_many(ctx.session.find(query)):
        mo = kms.cache.load(so)
        if _matches(mo, residual, dates, ctx.now, kms.vendor, wants_state):
            matched.append(mo.uid)
    total = len(matched)
    offset = req.offset_items or 0
    if offset < 0 or (req.maximum_items is not None and req.maximum_items < 0):
        raise KmipError(ResultReason.InvalidField, "MaximumItems and OffsetItems must not be negative")
    page = matched[offset:]
    if req.maximum_items:
        page = page[: req.maximum_items]
    if page:
        ctx.id_placeholder = page[0]
    return LocateResponse(located_items=total, unique_identifier=page)


def _is_tag_attr(item: TTLV, vendor: str) -> bool:
    name = item.find(Tag.AttributeName)
    vid = item.find(Tag.VendorIdentification)
    return name is not None and name.value == TAG_ATTRIBUTE and (vid is None or vid.value.lower() == vendor.lower())


def _matches(
    mo: ManagedObject, residual: list[TTLV], dates: dict[int, list[int]], now: int, vendor: str, wants_state: bool
) -> bool:
    view = full_view(mo, now, vendor)
    if not wants_state and view.state in DESTROYED:
        return False
    have = schema.encode(view).value
    for tag, bounds in dates.items():
        value = next((c.value for c in have if c.tag == tag), None)
        if value is None:
            return False
        if len(bounds) == 1 and value != bounds[0]:
            return False
        if len(bounds) == 2 and not min(bounds) <= value <= max(bounds):
            return False
    for item in residual:
        if item.tag == Tag.CryptographicUsageMask:
            mask = view.cryptographic_usage_mask or 0
            if mask & item.value != item.value:
                return False
        elif not any(c.tag == item.tag and c == item for c in have):
            return False
    return True
