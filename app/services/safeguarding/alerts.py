"""Safeguarding alerts: a child saying "someone hurt me" on a board reaches a person the
same day, whatever the consent says.

The rule (also in docs/privacy.md):

1. A symbols entry is a signal when the child chose a button marked, on that exact board
   version, with the Open Board Format extension field `"ext_childvoice_safeguarding": true`
   (e.g. "hurt", "scared", "unsafe", "secret").
2. A mat entry is a signal when a placement puts a button under a *negative* scale value
   (setting `safeguarding_negative_scale_values`, e.g. "don't like") and that button is
   either marked as above or is a *sensitive topic* (setting
   `safeguarding_sensitive_topics`, e.g. "home", "bedtime"), matched on its label or id.
3. Text and observations are never machine-read: a worker who hears a concern follows the
   council's safeguarding procedure as always.

An entry with one or more signals raises exactly one alert, for the allocated worker and
the team manager. It is raised in the same transaction as the entry and notified through
the webhook outbox; if it is not acknowledged within `alert_escalation_minutes` it
escalates to the manager (a second, `alert.escalated`, notification).
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Actor, Context
from app.core.db import new_session
from app.core.errors import Conflict, Invalid
from app.models.capture import VoiceEntry
from app.models.child import Child
from app.models.common import sane_utc
from app.models.safeguarding import AlertAcknowledge, AlertOut, SafeguardingAlert
from app.services import access, audit
from app.services.safeguarding import outbox
from app.services.access import Need

MARK = "ext_childvoice_safeguarding"
ALERT_NOT_FOUND = "No alert with this id is visible to you."


def _norm(value: Any) -> str:
    text = str(value or "").replace("\u2019", "'").replace("_", " ").lower()
    return re.sub(r"\s+", " ", text).strip()


def detect(settings: Settings, kind: str, content: dict[str, Any],
           buttons: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The safeguarding signals in an entry's content, given its board version's buttons."""
    signals: list[dict[str, Any]] = []
    if kind == "symbols":
        for choice in content.get("choices", []):
            if buttons.get(choice["button_id"], {}).get(MARK) is True:
                signals.append({"kind": "symbol", "button_id": choice["button_id"],
                                "label": choice.get("label"), "rule": "marked"})
    elif kind == "mat":
        negatives = {_norm(v) for v in settings.safeguarding_negative_scale_values}
        topics = {_norm(t) for t in settings.safeguarding_sensitive_topics}
        for placement in content.get("placements", []):
            if _norm(placement["scale_value"]) not in negatives:
                continue
            button = buttons.get(placement["button_id"], {})
            if button.get(MARK) is True:
                rule = "marked"
            elif _norm(button.get("label")) in topics or _norm(placement["button_id"]) in topics:
                rule = "sensitive_topic"
            else:
                continue
            signals.append({"kind": "placement", "button_id": placement["button_id"],
                            "label": placement.get("label"),
                            "scale_value": placement["scale_value"], "rule": rule})
    # One signal per button and rule, in the order the child made them.
    unique = {(s["kind"], s["button_id"], s.get("scale_value")): s for s in signals}
    return list(unique.values())


def raise_alert(ctx: Context, settings: Settings, entry: VoiceEntry,
                signals: list[dict[str, Any]]) -> SafeguardingAlert:
    """Called inside the transaction that stores `entry`; the caller commits."""
    child = ctx.db.get(Child, entry.child_id)
    allocation = access.current_allocation(ctx.db, child.id)
    now = utcnow()
    alert = SafeguardingAlert(child_id=child.id, entry_id=entry.id, team_id=child.team_id,
                              worker_id=allocation.user_id if allocation else None,
                              signals=signals, raised_at=now,
                              escalate_at=now + timedelta(minutes=settings.alert_escalation_minutes))
    ctx.db.add(alert)
    ctx.db.flush()
    outbox.enqueue(ctx.db, settings, "alert.raised", alert.id)
    audit.record(ctx, "alert.raise", child_id=child.id, object_type="alert", object_id=alert.id)
    return alert


def entries_with_alerts(db: Session, entry_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not entry_ids:
        return set()
    return set(db.exec(select(SafeguardingAlert.entry_id)
                       .where(SafeguardingAlert.entry_id.in_(entry_ids))))


def _names(db: Session, alerts: list[SafeguardingAlert]) -> dict[uuid.UUID, str]:
    ids = {a.child_id for a in alerts}
    return dict(db.exec(select(Child.id, Child.preferred_name).where(Child.id.in_(ids))).all()) \
        if ids else {}


def alert_out(alert: SafeguardingAlert, preferred_name: str | None = None) -> AlertOut:
    return AlertOut(id=alert.id, child_id=alert.child_id, preferred_name=preferred_name,
                    entry_id=alert.entry_id,
                    status="acknowledged" if alert.acknowledged_at else "open",
                    escalated=alert.escalated_at is not None, signals=alert.signals,
                    worker_id=alert.worker_id, raised_at=alert.raised_at,
                    escalate_at=alert.escalate_at, escalated_at=alert.escalated_at,
                    acknowledged_at=alert.acknowledged_at,
                    acknowledged_by=alert.acknowledged_by, outcome=alert.outcome)


# --- reading and acknowledging ---------------------------------------------------------

# Open and escalated first, then open, then acknowledged; newest first within each.
_RANK = case((SafeguardingAlert.acknowledged_at.is_not(None), 2),
             (SafeguardingAlert.escalated_at.is_not(None), 0), else_=1)


def _rank(alert: SafeguardingAlert) -> int:
    return 2 if alert.acknowledged_at else 0 if alert.escalated_at else 1


def _cursor(alert: SafeguardingAlert) -> str:
    raw = f"{_rank(alert)}|{alert.raised_at.isoformat()}|{alert.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _uncursor(cursor: str) -> tuple[int, datetime, uuid.UUID]:
    try:
        rank, when, alert_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        parsed = datetime.fromisoformat(when)
        if parsed.tzinfo is None:
            raise ValueError
        return int(rank), sane_utc(parsed), uuid.UUID(alert_id)
    except ValueError:
        raise Invalid("cursor is not one this server gave out; start again without it",
                      field=["query", "cursor"]) from None


def list_alerts(ctx: Context, status: str | None, limit: int, cursor: str | None) -> dict:
    """Alerts on the children the caller holds or whose team they manage; open first."""
    user = access.require_staff(ctx.actor)
    visible = select(Child.id).where(access.safeguarding_children_clause(user))
    stmt = select(SafeguardingAlert).where(SafeguardingAlert.child_id.in_(visible))
    if status == "open":
        stmt = stmt.where(SafeguardingAlert.acknowledged_at.is_(None))
    elif status == "acknowledged":
        stmt = stmt.where(SafeguardingAlert.acknowledged_at.is_not(None))
    if cursor:
        rank, when, alert_id = _uncursor(cursor)
        stmt = stmt.where(or_(_RANK > rank,
                              and_(_RANK == rank, SafeguardingAlert.raised_at < when),
                              and_(_RANK == rank, SafeguardingAlert.raised_at == when,
                                   SafeguardingAlert.id < alert_id)))
    rows = list(ctx.db.exec(stmt.order_by(_RANK, SafeguardingAlert.raised_at.desc(),
                                          SafeguardingAlert.id.desc()).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = _cursor(rows[-1])
    for alert in rows:
        audit.record(ctx, "alert.list", child_id=alert.child_id, object_type="alert",
                     object_id=alert.id)
    names = _names(ctx.db, rows)
    ctx.db.commit()
    return {"items": [alert_out(a, names.get(a.child_id)) for a in rows],
            "next_cursor": next_cursor}


def _alert_for(ctx: Context, alert_id: uuid.UUID) -> SafeguardingAlert:
    return access.record_for(ctx, SafeguardingAlert, alert_id, Need.safeguard, ALERT_NOT_FOUND)


def get_alert(ctx: Context, alert_id: uuid.UUID) -> AlertOut:
    alert = _alert_for(ctx, alert_id)
    audit.record(ctx, "alert.read", child_id=alert.child_id, object_type="alert",
                 object_id=alert.id)
    shown = alert_out(alert, _names(ctx.db, [alert]).get(alert.child_id))
    ctx.db.commit()
    return shown


def acknowledge(ctx: Context, alert_id: uuid.UUID, data: AlertAcknowledge) -> AlertOut:
    alert = _alert_for(ctx, alert_id)
    now = utcnow()
    # Conditional, so two people acknowledging at once cannot both succeed.
    done = ctx.db.exec(update(SafeguardingAlert)
                       .where(SafeguardingAlert.id == alert.id,
                              SafeguardingAlert.acknowledged_at.is_(None))
                       .values(acknowledged_at=now, acknowledged_by=ctx.user.id,
                              outcome=data.outcome))
    if done.rowcount != 1:
        ctx.db.rollback()
        ctx.db.refresh(alert)
        raise Conflict("This alert was already acknowledged.",
                       acknowledged_at=alert.acknowledged_at.isoformat()
                       if alert.acknowledged_at else None)
    audit.record(ctx, "alert.acknowledge", child_id=alert.child_id, object_type="alert",
                 object_id=alert.id)
    ctx.db.commit()
    ctx.db.refresh(alert)
    return alert_out(alert, _names(ctx.db, [alert]).get(alert.child_id))


# --- escalation (run by the outbox worker) --------------------------------------------

def escalate_due(engine: Engine, settings: Settings, limit: int = 100) -> int:
    """Escalate open alerts past their escalation time; safe to run in many processes at
    once (each alert is escalated by exactly one of them)."""
    now = utcnow()
    escalated = 0
    with new_session(engine) as db:
        due = list(db.exec(select(SafeguardingAlert.id).where(
            SafeguardingAlert.acknowledged_at.is_(None),
            SafeguardingAlert.escalated_at.is_(None),
            SafeguardingAlert.escalate_at <= now).limit(limit)))
        db.rollback()
        for alert_id in due:
            done = db.exec(update(SafeguardingAlert)
                           .where(SafeguardingAlert.id == alert_id,
                                  SafeguardingAlert.acknowledged_at.is_(None),
                                  SafeguardingAlert.escalated_at.is_(None))
                           .values(escalated_at=now))
            if done.rowcount != 1:
                db.rollback()
                continue
            alert = db.get(SafeguardingAlert, alert_id)
            outbox.enqueue(db, settings, "alert.escalated", alert_id)
            audit.record(Context(db=db, actor=Actor()), "alert.escalate",
                         child_id=alert.child_id, object_type="alert", object_id=alert_id)
            db.commit()
            escalated += 1
    return escalated
