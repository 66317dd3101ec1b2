"""The audit trail: one event per read or write of a child's data, hash-chained.

Each event stores the hash of the one before it, so an edit, a deletion or a reordering
breaks the chain at that point. Appending takes a lock (PostgreSQL advisory lock; SQLite
already serialises writers) so concurrent requests cannot fork the chain; callers record
the event last, just before commit, to keep that lock short.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable

from sqlalchemy import text
from sqlmodel import select

from app.core.context import Context
from app.core.db import is_postgres
from app.models.audit import AuditEvent

GENESIS_HASH = "0" * 64
_CHAIN_LOCK_KEY = 0x6376_6175  # "cvau"


def event_hash(event: AuditEvent) -> str:
    body = {
        "prev_hash": event.prev_hash,
        "occurred_at": event.occurred_at.isoformat(),
        "actor_type": event.actor_type,
        "actor_id": str(event.actor_id) if event.actor_id else None,
        "actor_role": event.actor_role,
        "action": event.action,
        "child_id": str(event.child_id) if event.child_id else None,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "client_ip": event.client_ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def record(ctx: Context, action: str, *, child_id: uuid.UUID | None = None,
           object_type: str | None = None, object_id: uuid.UUID | str | None = None) -> None:
    record_many(ctx, [(action, child_id, object_type, object_id)])


def record_many(ctx: Context, events: Iterable[tuple[str, uuid.UUID | None, str | None,
                                                     uuid.UUID | str | None]]) -> None:
    """Several events of one request, `(action, child_id, object_type, object_id)` each,
    chained in the order given: one lock and one read of the chain's tail for them all."""
    events = list(events)
    if not events:
        return
    db = ctx.db
    if is_postgres(db.get_bind()):
        db.exec(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_CHAIN_LOCK_KEY))
    prev = db.exec(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first()
    for action, child_id, object_type, object_id in events:
        event = AuditEvent(
            actor_type=ctx.actor.kind, actor_id=ctx.actor.id, actor_role=ctx.actor.role,
            action=action, child_id=child_id, object_type=object_type,
            object_id=str(object_id) if object_id is not None else None,
            client_ip=ctx.client_ip, user_agent=(ctx.user_agent or "")[:300] or None,
            request_id=ctx.request_id, prev_hash=prev or GENESIS_HASH, hash="")
        event.hash = prev = event_hash(event)
        db.add(event)
        # One at a time: ids come in chain order whatever the driver does with a bulk insert.
        db.flush()
