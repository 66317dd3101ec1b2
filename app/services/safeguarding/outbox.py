"""The webhook outbox: notifications to the council's own systems, delivered at least once.

A delivery row is written in the same transaction as the alert (or its escalation), so a
notification is never lost to a crash between the two. The background worker (see
services/background.py) claims due rows with a lease (`SELECT … FOR UPDATE SKIP LOCKED`
on PostgreSQL; SQLite serialises writers), escalations first, sends them outside any
transaction, and records the outcome only while its lease still holds. The lease covers
every send of the batch timing out, twice over, and no send starts with less than two
timeouts of it left, so a slow receiver never lets a second worker send the same row at
the same time. A worker that dies mid-send leaves a lease that runs out, and another
sends again: hence *at least once*; receivers de-duplicate on the `webhook-id`.

Signature: the Standard Webhooks scheme (https://www.standardwebhooks.com/), made with
the `standardwebhooks` library, so the council's receiver can use any stock verifier:

    webhook-id: <the delivery id, the same on every retry>
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>

The body carries no child content: the event, the delivery id, the alert id and a link.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from standardwebhooks import Webhook

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import is_postgres, new_session
from app.models.safeguarding import WebhookDelivery

log = logging.getLogger("childvoice.outbox")


SECRET_PREFIX = "whsec_"


def signed_headers(secret: str, delivery_id: str, when: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt. Raises ValueError for a secret that is
    not `whsec_` and the base64 of 24 to 64 bytes (the library itself would take almost any
    text, and a receiver's stock verifier would then disagree)."""
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        key = b""
    if not secret.startswith(SECRET_PREFIX) or not 24 <= len(key) <= 64:
        raise ValueError("webhook_secret is not a Standard Webhooks secret (whsec_ and the "
                         "base64 of 24 to 64 random bytes)")
    signature = Webhook(secret).sign(delivery_id, when, body)
    return {"webhook-id": delivery_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature}


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
    try:
        signature = signed_headers(settings.webhook_secret, str(delivery.id), utcnow(),
                                   delivery.body)
    except ValueError as exc:
        return SendResult(False, error=str(exc))
    request = urllib.request.Request(
        settings.webhook_url, data=delivery.body.encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "childvoice-webhook/1",
                 **signature})
    try:
        with _opener.open(request, timeout=settings.webhook_timeout_seconds) as response:
            return SendResult(200 <= response.status < 300, response.status,
                              None if 200 <= response.status < 300 else f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        return SendResult(False, exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return SendResult(False, None, f"{type(exc).__name__}: {reason}"[:300])


def lease_seconds(settings: Settings) -> float:
    """Long enough for every delivery of a batch to time out, twice over, plus a minute."""
    return settings.outbox_batch_size * settings.webhook_timeout_seconds * 2 + 60


def _claim(engine: Engine, settings: Settings) -> tuple[list[WebhookDelivery], datetime]:
    now = utcnow()
    lease = now + timedelta(seconds=lease_seconds(settings))
    with new_session(engine) as db:
        stmt = (select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending",
                       WebhookDelivery.next_attempt_at <= now,
                       (WebhookDelivery.claimed_until.is_(None)) |
                       (WebhookDelivery.claimed_until < now))
                # Escalations first: an alert nobody has answered is the most urgent.
                .order_by(case((WebhookDelivery.event == "alert.escalated", 0), else_=1),
                          WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(settings.outbox_batch_size))
        if is_postgres(engine):
            stmt = stmt.with_for_update(skip_locked=True)
        claimed = list(db.exec(stmt))
        for delivery in claimed:
            delivery.claimed_until = lease
            db.add(delivery)
        db.commit()
        return claimed, lease


def _ours(delivery_id: uuid.UUID, lease: datetime):  # noqa: ANN202 - a where clause
    return (WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
            WebhookDelivery.claimed_until == lease)


def deliver_due(engine: Engine, settings: Settings) -> dict[str, int]:
    """Send one batch of what is due, once each; returns counts by outcome."""
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    claimed, lease = _claim(engine, settings)
    margin = timedelta(seconds=2 * settings.webhook_timeout_seconds)
    for n, delivery in enumerate(claimed):
        if utcnow() + margin > lease:
            # Not enough lease left to be sure no one else sends it meanwhile: hand the
            # rest back for the next pass.
            with new_session(engine) as db:
                for rest in claimed[n:]:
                    db.exec(update(WebhookDelivery).where(*_ours(rest.id, lease))
                            .values(claimed_until=None))
                db.commit()
            break
        result = _send(settings, delivery)
        _record_attempt(engine, settings, delivery, lease, result, counts)
    return counts


def _record_attempt(engine: Engine, settings: Settings, delivery: WebhookDelivery,
                    lease: datetime, result: "SendResult", counts: dict[str, int]) -> None:
    now = utcnow()
    with new_session(engine) as db:
        row = db.exec(select(WebhookDelivery).where(*_ours(delivery.id, lease))).first()
        if row is None:  # given up by an admin, or our lease ran out and was taken over
            return
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
