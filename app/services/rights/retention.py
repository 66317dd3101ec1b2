"""Retention: remove what is past its retention period, per kind, and record what went.

Each kind named in the `retention_days` setting has a rule: how to find what is older
than the cutoff, and how to remove it. `run(..., apply=False)` only reports (the CLI's
--dry-run); `apply=True` removes, stores a RetentionRun with the ids it removed, and writes
an audit event (per removed item of a child's data, plus one for the run). Audit events
themselves are never removed.

Kinds with rules now:
- webhook_delivery: notifications delivered or given up, older than the period;
- sign_in: failed sign-in counters not touched for the period (and not locking now);
- staff_session: sign-ins that ended (expired or revoked) more than the period ago, with
  their refresh tokens.

- upload: resumable uploads that ended (stored as an entry, refused, expired or
  terminated) more than the period ago. The row keeps the upload's metadata (caption,
  prompt, topic) and any refusal; the entry it made is the record. Each removal is audited
  against the child; any bytes still in the store go with the next cleanup.
- sync_receipt: what a tablet's items were, kept so a resend is answered `duplicate` and
  `GET /sync/state` can say what the server holds; older than the period (well past any
  tablet's offline window: a resend after it is still stored once, as sessions and entries
  carry their own unique client_id).

- photo, audio: media captured before the cutoff. Their files (clean copy, renditions)
  leave the MediaStore; the media row stays as a tombstone on its entry (erased by
  retention, when), and each removal is audited against the child.

Children's records themselves (entries, consents, plans) are not removed here: how long a
social care record is kept is the council's records policy, applied by its own process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Actor, Context
from app.core.db import new_session
from app.models.media import Media
from app.models.retention import RetentionRun
from app.models.safeguarding import WebhookDelivery
from app.models.sync import SyncReceipt
from app.models.upload import Upload
from app.models.staff import RefreshToken, SignInThrottle, StaffSession
from app.services import audit
from app.services.media import records as media
from app.storage import make_store

ID_LIST_LIMIT = 1000


@dataclass(frozen=True)
class Candidate:
    object_type: str
    object_id: str
    child_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Rule:
    kind: str
    find: Callable[[Session, datetime, datetime], list[Candidate]]  # (db, cutoff, now)
    # Removes the candidates; may return media blob keys it released, which are deleted
    # from the store once the removal has committed (if no other media still uses them).
    remove: Callable[[Session, list[Candidate]], list[str] | None]


RULES: dict[str, Rule] = {}


def register(rule: Rule) -> None:
    RULES[rule.kind] = rule


# --- rules -----------------------------------------------------------------------------

def _find_deliveries(db: Session, cutoff: datetime, now: datetime) -> list[Candidate]:
    rows = db.exec(select(WebhookDelivery.id).where(
        WebhookDelivery.status.in_(["delivered", "failed"]),
        WebhookDelivery.created_at < cutoff))
    return [Candidate("webhook_delivery", str(i)) for i in rows]


def _remove_deliveries(db: Session, items: list[Candidate]) -> None:
    ids = [uuid.UUID(c.object_id) for c in items]
    db.exec(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))


def _find_throttles(db: Session, cutoff: datetime, now: datetime) -> list[Candidate]:
    rows = db.exec(select(SignInThrottle.key).where(
        SignInThrottle.last_failure_at < cutoff,
        or_(SignInThrottle.locked_until.is_(None), SignInThrottle.locked_until < now)))
    return [Candidate("sign_in_throttle", key) for key in rows]


def _remove_throttles(db: Session, items: list[Candidate]) -> None:
    db.exec(delete(SignInThrottle).where(SignInThrottle.key.in_([c.object_id for c in items])))


def _find_sessions(db: Session, cutoff: datetime, now: datetime) -> list[Candidate]:
    rows = db.exec(select(StaffSession.id).where(or_(
        StaffSession.expires_at < cutoff, StaffSession.revoked_at < cutoff)))
    return [Candidate("staff_session", str(i)) for i in rows]


def _remove_sessions(db: Session, items: list[Candidate]) -> None:
    ids = [uuid.UUID(c.object_id) for c in items]
    db.exec(delete(RefreshToken).where(RefreshToken.session_id.in_(ids)))
    db.exec(delete(StaffSession).where(StaffSession.id.in_(ids)))


def _find_uploads(db: Session, cutoff: datetime, now: datetime) -> list[Candidate]:
    # completed_at is set when an upload became an entry or was refused; the others end
    # it unfinished. An upload still in progress has none of the three.
    ended = func.coalesce(Upload.completed_at, Upload.expired_at, Upload.terminated_at)
    rows = db.exec(select(Upload.id, Upload.child_id).where(ended < cutoff))
    return [Candidate("upload", str(i), child) for i, child in rows]


def _remove_uploads(db: Session, items: list[Candidate]) -> None:
    db.exec(delete(Upload).where(Upload.id.in_([uuid.UUID(c.object_id) for c in items])))


def _find_receipts(db: Session, cutoff: datetime, now: datetime) -> list[Candidate]:
    rows = db.exec(select(SyncReceipt.id).where(SyncReceipt.received_at < cutoff))
    return [Candidate("sync_receipt", str(i)) for i in rows]


def _remove_receipts(db: Session, items: list[Candidate]) -> None:
    ids = [int(c.object_id) for c in items]
    for i in range(0, len(ids), 1000):
        db.exec(delete(SyncReceipt).where(SyncReceipt.id.in_(ids[i:i + 1000])))


def _media_rule(kind: str) -> Rule:
    def find(db: Session, cutoff: datetime, now: datetime) -> list[Candidate]:
        return [Candidate("media", str(m.id), m.child_id)
                for m in media.past_retention(db, kind, cutoff)]

    def remove(db: Session, items: list[Candidate]) -> list[str]:
        released: list[str] = []
        for c in items:
            row = db.get(Media, uuid.UUID(c.object_id))
            released += media.erase(db, row, cause="retention", reason=None)
        return released

    return Rule(kind, find, remove)


register(Rule("webhook_delivery", _find_deliveries, _remove_deliveries))
register(Rule("sign_in", _find_throttles, _remove_throttles))
register(Rule("staff_session", _find_sessions, _remove_sessions))
register(Rule("upload", _find_uploads, _remove_uploads))
register(Rule("sync_receipt", _find_receipts, _remove_receipts))
register(_media_rule("photo"))
register(_media_rule("audio"))


# --- running -----------------------------------------------------------------------------

def run(engine: Engine, settings: Settings, *, apply: bool) -> dict[str, Any]:
    """Find (and with `apply`, remove) everything past retention; returns the summary."""
    now = utcnow()
    summary: dict[str, Any] = {}
    released: list[str] = []
    with new_session(engine) as db:
        ctx = Context(db=db, actor=Actor())
        for kind, days in sorted(settings.retention_days.items()):
            rule = RULES.get(kind)
            cutoff = now - timedelta(days=days)
            item: dict[str, Any] = {"days": days, "cutoff": cutoff.isoformat()}
            if rule is None:
                summary[kind] = {**item, "status": "no_rule", "found": 0, "removed": 0}
                continue
            found = rule.find(db, cutoff, now)
            item.update(status="ok", found=len(found), removed=0,
                        ids=[c.object_id for c in found[:ID_LIST_LIMIT]])
            if apply and found:
                released += rule.remove(db, found) or []
                item["removed"] = len(found)
                for c in found:
                    if c.child_id is not None:
                        audit.record(ctx, "retention.remove", child_id=c.child_id,
                                     object_type=c.object_type, object_id=c.object_id)
            summary[kind] = item
        if apply:
            retention_run = RetentionRun(ran_at=now, applied=True, summary=summary)
            db.add(retention_run)
            db.flush()
            audit.record(ctx, "retention.apply", object_type="retention_run",
                         object_id=retention_run.id)
            db.commit()
            summary = {"run_id": str(retention_run.id), **summary}
            media.delete_if_unreferenced(db, make_store(settings), released)
        else:
            db.rollback()
    return summary
