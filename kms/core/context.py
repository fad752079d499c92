"""Per-request state shared by the operations of one request or batch."""

from __future__ import annotations

import dataclasses

from kms.store.base import Session


@dataclasses.dataclass(slots=True)
class RequestContext:
    user: str
    session: Session
    now: int  # POSIX seconds, fixed for the whole request
    # Cosmian-style bare operations: objects created without an ActivationDate start Active, as the Cosmian
    # clients expect (they encrypt right after Create). KMIP messages keep the standard Pre-Active start.
    activate_on_create: bool = False
    cosmian_dialect: bool = False
    protocol_version: tuple[int, int] = (2, 1)
    id_placeholder: str | None = None
    scrub: bool = False  # destroyed key material: scrub database files after commit
    touched: set[str] = dataclasses.field(default_factory=set)
