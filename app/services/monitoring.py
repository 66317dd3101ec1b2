"""What the monitoring asks: is the service ready, and the figures behind /metrics.

Figures that come from the database (outbox, alerts) are the council's, whichever process
is asked; request durations and media jobs are the answering process's own (see
docs/deploy.md for scraping several processes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from app.core.clock import utcnow
from app.core.db import new_session
from app.models.safeguarding import SafeguardingAlert, WebhookDelivery
from app.storage.base import MediaStore

# A key no blob can have been written under (stores only take real SHA-256 keys), so
# asking for it touches the store without reading anything.
_PROBE_KEY = "0" * 64


@dataclass
class Readiness:
    database: str
    media_store: str

    @property
    def ok(self) -> bool:
        return self.database == "ok" and self.media_store == "ok"


def readiness(engine: Engine, store: MediaStore) -> Readiness:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; say which kind
        database = f"unavailable ({type(exc).__name__})"
    try:
        store.exists(_PROBE_KEY)
        media = "ok"
    except Exception as exc:  # noqa: BLE001
        media = f"unavailable ({type(exc).__name__})"
    return Readiness(database, media)


@dataclass
class ServiceFigures:
    outbox_pending: int
    outbox_oldest_seconds: float
    alerts_open: int
    alerts_overdue: int


def service_figures(engine: Engine) -> ServiceFigures:
    now = utcnow()
    with new_session(engine) as db:
        pending, oldest = db.exec(
            select(func.count(), func.min(WebhookDelivery.created_at))
            .where(WebhookDelivery.status == "pending")).one()
        open_alerts = SafeguardingAlert.acknowledged_at.is_(None)
        alerts_open = db.exec(select(func.count()).select_from(SafeguardingAlert)
                              .where(open_alerts)).one()
        alerts_overdue = db.exec(select(func.count()).select_from(SafeguardingAlert)
                                 .where(open_alerts, SafeguardingAlert.escalate_at <= now)).one()
    if oldest is not None and oldest.tzinfo is None:  # an aggregate may come back naive
        oldest = oldest.replace(tzinfo=timezone.utc)
    return ServiceFigures(pending, (now - oldest).total_seconds() if oldest else 0.0,
                          alerts_open, alerts_overdue)
