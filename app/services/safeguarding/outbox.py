"""The webhook outbox: notifications to the council's own systems, delivered at least once.

A delivery row is written in the same transaction as the alert (or its escalation), so a
notification is never lost to a crash between the two. Any number of processes may run
the worker: each claims due rows with a short lease (`SELECT … FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite serialises writers), sends them outside any transaction, and records
the outcome. A process that dies mid-send leaves a lease that runs out, and another
process sends again: hence *at least once*; receivers de-duplicate on the delivery id.

Signature (see docs/privacy.md for the council's IT):

    X-Childvoice-Timestamp: <unix seconds>
    X-Childvoice-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The body carries no child content: the event, the delivery id, the alert id and a link.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import is_postgres, new_session
from app.models.safeguarding import WebhookDelivery

log = logging.getLogger("childvoice.outbox")

SIGNATURE_HEADER = "X-Childvoice-Signature"
TIMESTAMP_HEADER = "X-Childvoice-Timestamp"
DELIVERY_HEADER = "X-Childvoice-Delivery"
EVENT_HEADER = "X-Childvoice-Event"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def alert_link(settings: Settings, alert_id: uuid.UUID) -> str:
    return f"{settings.public_base_url.rstrip('/')}/api/v1/alerts/{alert_id}"


def enqueue(db: Session, settings: Settings, event: str,
            alert_id: uuid.UUID) -> WebhookDelivery | None:
    """Add a notification to the outbox in the caller's transaction (the caller commits).
    Nothing is queued when no webhook URL is configured: alerts are still in the app."""
    if not settings.webhook_url:
        return None
    delivery = WebhookDelivery(event=event, alert_id=alert_id, body="", next_attempt_at=utcnow())
    delivery.body = json.dumps({"event": event, "delivery_id": str(delivery.id),
                                "alert_id": str(alert_id),
                                "link": alert_link(settings, alert_id)},
                               separators=(",", ":"), sort_keys=True)
    db.add(delivery)
    db.flush()
    return delivery


def backoff(settings: Settings, attempts: int) -> timedelta:
    seconds = settings.webhook_backoff_seconds * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, settings.webhook_backoff_max_seconds))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return None  # a redirect is an answer, not a delivery: never follow it elsewhere


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None


def _send(settings: Settings, delivery: WebhookDelivery) -> SendResult:
    if not settings.webhook_url:
        return SendResult(False, error="webhook_url is not set")
    if not settings.webhook_secret:
        return SendResult(False, error="webhook_secret is not set; nothing is sent unsigned")
    body = delivery.body.encode()
    timestamp = str(int(utcnow().timestamp()))
    request = urllib.request.Request(settings.webhook_url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "childvoice-webhook/1",
        TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(settings.webhook_secret,
                                                             timestamp, body),
        DELIVERY_HEADER: str(delivery.id), EVENT_HEADER: delivery.event})
    try:
        with _opener.open(request, timeout=settings.webhook_timeout_seconds) as response:
            return SendResult(200 <= response.status < 300, response.status,
                              None if 200 <= response.status < 300 else f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        return SendResult(False, exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return SendResult(False, None, f"{type(exc).__name__}: {reason}"[:300])


def _claim(engine: Engine, settings: Settings, limit: int) -> list[WebhookDelivery]:
    now = utcnow()
    with new_session(engine) as db:
        stmt = (select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending",
                       WebhookDelivery.next_attempt_at <= now,
                       (WebhookDelivery.claimed_until.is_(None)) |
                       (WebhookDelivery.claimed_until < now))
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit))
        if is_postgres(engine):
            stmt = stmt.with_for_update(skip_locked=True)
        claimed = list(db.exec(stmt))
        for delivery in claimed:
            delivery.claimed_until = now + timedelta(seconds=settings.outbox_lease_seconds)
            db.add(delivery)
        db.commit()
        return claimed


def deliver_due(engine: Engine, settings: Settings, limit: int = 50) -> dict[str, int]:
    """Send every delivery that is due, once each; returns counts by outcome."""
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    for delivery in _claim(engine, settings, limit):
        result = _send(settings, delivery)
        now = utcnow()
        with new_session(engine) as db:
            row = db.get(WebhookDelivery, delivery.id)
            if row is None or row.status != "pending":
                continue
            row.attempts += 1
            row.last_attempt_at = now
            row.last_status_code = result.status_code
            row.last_error = result.error
            row.url = settings.webhook_url
            row.claimed_until = None
            if result.ok:
                row.status, row.delivered_at = "delivered", now
                counts["delivered"] += 1
            elif row.attempts >= settings.webhook_max_attempts:
                row.status = "failed"
                counts["failed"] += 1
                log.warning("webhook delivery %s gave up after %d attempts", row.id,
                            row.attempts)
            else:
                row.next_attempt_at = now + backoff(settings, row.attempts)
                counts["retrying"] += 1
            db.add(row)
            db.commit()
    return counts
