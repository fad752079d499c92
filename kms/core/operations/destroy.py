"""Destroy: erase the key material for good; the object's metadata remains, in a Destroyed state.

An Active object must be revoked first (KMIP). The stored row is rewritten without the material and the
database files are scrubbed after commit (secure_delete + WAL truncation on SQLite), and the in-memory cache
entry is dropped, so the material is gone from this node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kms.core.context import RequestContext
from kms.core.lifecycle import DESTROYED, denied, effective_state
from kms.core.managed import copy_object
from kms.core.material import strip_material
from kms.kmip import schema
from kms.kmip.enums import ResultReason, State
from kms.kmip.errors import KmipError
from kms.kmip.objects import OBJECT_CLASSES
from kms.kmip.payloads import DestroyRequest, UidResponse

if TYPE_CHECKING:
    from kms.core.kms import Kms

WRITES = True


def run(kms: Kms, req: DestroyRequest, ctx: RequestContext) -> UidResponse:
    mo = copy_object(kms.load(ctx, req.unique_identifier, include_destroyed=False))
    a = mo.attributes
    state = effective_state(a, ctx.now)
    if state in DESTROYED:
        raise KmipError(ResultReason.ObjectDestroyed, f"object {mo.uid} is already destroyed")
    if state == State.Active:
        raise denied(f"object {mo.uid} is Active; revoke it before destroying it")
    # Work on a fresh decode: the cached object must keep no reference that we then mutate.
    obj = schema.decode(OBJECT_CLASSES[mo.object_type], schema.encode(mo.obj))
    mo.obj = strip_material(obj)
    a.state = State.DestroyedCompromised if state == State.Compromised else State.Destroyed
    a.destroy_date = ctx.now
    if req.remove:
        ctx.session.delete(mo.uid)  # Cosmian "remove": the record goes too
        ctx.touched.add(mo.uid)
    else:
        kms.save(ctx, mo)
    kms.cache.forget(mo.uid)
    ctx.scrub = True
    return UidResponse(unique_identifier=mo.uid)
