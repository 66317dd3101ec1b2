"""The audit trail: one event per read or write of a child's data, hash-chained.

Each event stores the hash of the one before it, so an edit, a deletion or a reordering
breaks the chain at that point. Appending takes a lock (PostgreSQL advisory lock; SQLite
already serialises writers) so concurrent requests cannot fork the chain; callers record
the event last, just before commit, to keep that lock short.

Why that is enough on PostgreSQL: the lock is transaction-scoped, so it is held until the
appending transaction commits; the next appender gets it only then, and (READ COMMITTED)
its next statement sees the committed tail. Ids come from a sequence while the lock is
held, so id order is chain order. A transaction that rolls back leaves a gap in the ids
but no gap in the chain, which links hashes, not ids.

`verify()` walks the whole chain in id order and names the first event that breaks it.
Removing events from the very end leaves a shorter chain that is still whole; to catch
that, keep the head `verify()` reports somewhere else (the council's own log) and pass it
back as an anchor next time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timezone

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.core.context import Context
from app.core.clock import utcnow
from app.core.db import is_postgres, new_session
from app.core.errors import Invalid
from app.models.audit import AuditEvent
from app.models.staff import User
from app.services import access
from app.services.access import Need

GENESIS_HASH = "0" * 64
_CHAIN_LOCK_KEY = 0x6376_6175  # "cvau"


def event_hash(event: AuditEvent) -> str:
    body = {
        "prev_hash": event.prev_hash,
        "occurred_at": event.occurred_at.astimezone(timezone.utc).isoformat(),
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


def record_per_child(ctx: Context, action: str, child_ids: list[uuid.UUID]) -> None:
    """One event per child for a read that spans many children (a team report), chained
    like record_many but written in one statement: hashes are computed here, and on
    PostgreSQL the ids are taken from the sequence first, in chain order (SQLite gives
    an executemany ascending rowids in the order sent)."""
    if not child_ids:
        return
    db = ctx.db
    postgres = is_postgres(db.get_bind())
    if postgres:
        db.exec(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_CHAIN_LOCK_KEY))
    prev = db.exec(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first() \
        or GENESIS_HASH
    occurred_at = utcnow()
    common = {"actor_type": ctx.actor.kind, "actor_id": ctx.actor.id,
              "actor_role": ctx.actor.role, "action": action, "object_type": "child",
              "client_ip": ctx.client_ip, "user_agent": (ctx.user_agent or "")[:300] or None,
              "request_id": ctx.request_id}
    ids: list[int] = []
    if postgres:
        ids = sorted(db.exec(text(
            "SELECT nextval(pg_get_serial_sequence('audit_events', 'id')) "
            "FROM generate_series(1, :n)").bindparams(n=len(child_ids))).scalars())
    rows = []
    for i, child_id in enumerate(child_ids):
        row = common | {"occurred_at": occurred_at, "child_id": child_id,
                        "object_id": str(child_id), "prev_hash": prev}
        row["hash"] = prev = event_hash(AuditEvent.model_construct(**row))
        if ids:
            row["id"] = ids[i]
        rows.append(row)
    db.execute(insert(AuditEvent.__table__), rows)


# --- verification ----------------------------------------------------------------------

@dataclass
class ChainReport:
    ok: bool
    checked: int
    head_id: int | None = None
    head_hash: str | None = None
    broken_at: int | None = None       # the id of the first event that breaks the chain
    problem: str | None = None         # changed | deleted | reordered | anchor
    detail: str | None = None


def verify(engine: Engine, anchor: tuple[int, str] | None = None,
           batch: int = 1000) -> ChainReport:
    """Check every event's own hash and its link to the one before, in id order."""
    expected_prev, checked, last = GENESIS_HASH, 0, None
    with new_session(engine) as db:
        after = 0
        while True:
            rows = list(db.exec(select(AuditEvent).where(AuditEvent.id > after)
                                .order_by(AuditEvent.id).limit(batch)))
            if not rows:
                break
            for event in rows:
                if event_hash(event) != event.hash:
                    return ChainReport(False, checked, broken_at=event.id, problem="changed",
                                       detail=f"event {event.id} was changed: its contents "
                                       "no longer match its hash")
                if event.prev_hash != expected_prev:
                    return _link_broken(db, event, last, checked)
                expected_prev, last, checked = event.hash, event, checked + 1
            after = rows[-1].id
        if anchor is not None:
            anchor_id, anchor_hash = anchor
            found = db.get(AuditEvent, anchor_id)
            if found is None or found.hash != anchor_hash:
                return ChainReport(False, checked, last.id if last else None,
                                   last.hash if last else None, broken_at=anchor_id,
                                   problem="anchor",
                                   detail=f"event {anchor_id}, recorded earlier as the head, "
                                   "is missing or different: events were removed from the "
                                   "end or the chain was rebuilt")
    return ChainReport(True, checked, last.id if last else None, last.hash if last else None)


def _link_broken(db: Session, event: AuditEvent, before: AuditEvent | None,
                 checked: int) -> ChainReport:
    where = f"event {before.id}" if before else "the start of the chain"
    named = db.exec(select(AuditEvent.id).where(AuditEvent.hash == event.prev_hash)).first() \
        if event.prev_hash != GENESIS_HASH else None
    if named is not None or event.prev_hash == GENESIS_HASH:
        target = f"event {named}" if named is not None else "the start of the chain"
        return ChainReport(False, checked, broken_at=event.id, problem="reordered",
                           detail=f"event {event.id} should follow {target} but comes after "
                           f"{where}: events were reordered")
    return ChainReport(False, checked, broken_at=event.id, problem="deleted",
                       detail=f"the event that came before event {event.id} (after {where}) "
                       "is missing: it was deleted, or changed and re-hashed")


# --- the trail of one child, for their team manager -----------------------------------

def _cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(str(event_id).encode()).decode()


def _uncursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except ValueError:
        raise Invalid("cursor is not one this server gave out; start again without it",
                      field=["query", "cursor"]) from None


def child_trail(ctx: Context, child_id: uuid.UUID, limit: int, cursor: str | None) -> dict:
    """Who read or changed this child's record, and when: newest first."""
    child = access.child_for(ctx, child_id, Need.oversee)
    stmt = select(AuditEvent, User.full_name).join(
        User, User.id == AuditEvent.actor_id, isouter=True).where(AuditEvent.child_id == child.id)
    if cursor:
        stmt = stmt.where(AuditEvent.id < _uncursor(cursor))
    rows = list(ctx.db.exec(stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    next_cursor = _cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    items = [{**event.model_dump(exclude={"prev_hash", "hash"}),
              "actor_name": name if event.actor_type == "staff" else None}
             for event, name in rows[:limit]]
    record(ctx, "audit.read", child_id=child.id, object_type="child", object_id=child.id)
    ctx.db.commit()
    return {"items": items, "next_cursor": next_cursor}
