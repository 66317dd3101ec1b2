"""Safeguarding alerts raised by what a child said, and the webhook outbox that tells the
council's own systems about them (an id and a link only, never what the child said)."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field as PydField
from sqlmodel import Field, Index, SQLModel

from app.models.common import ApiModel, SafeText, id_field, json_field, utc_field


class SafeguardingAlert(SQLModel, table=True):
    __tablename__ = "safeguarding_alerts"
    __table_args__ = (Index("ix_safeguarding_alerts_open", "acknowledged_at", "raised_at"),)
    id: uuid.UUID = id_field()
    child_id: uuid.UUID = Field(foreign_key="children.id", index=True)
    # One alert per entry, however often the tablet resends it.
    entry_id: uuid.UUID = Field(foreign_key="voice_entries.id", unique=True)
    team_id: uuid.UUID = Field(foreign_key="teams.id", index=True)
    # The worker who held the child when it was raised (None if nobody did).
    worker_id: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    # What matched: [{"kind": "symbol"|"placement", "button_id", "label", "scale_value"?,
    # "rule": "marked"|"sensitive_topic"}]. Child content: shown to the worker and manager
    # only, never sent out.
    signals: list[dict[str, Any]] = json_field(list)
    raised_at: datetime = utc_field(default_now=True)
    escalate_at: datetime = utc_field()
    escalated_at: datetime | None = utc_field(nullable=True)
    acknowledged_at: datetime | None = utc_field(nullable=True)
    acknowledged_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    outcome: str | None = Field(default=None, max_length=4000)


class WebhookDelivery(SQLModel, table=True):
    """The outbox: one row per notification, written in the same transaction as the alert
    (or its escalation), delivered at least once by whichever process claims it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)
    id: uuid.UUID = id_field()
    event: str = Field(max_length=32)  # alert.raised | alert.escalated
    alert_id: uuid.UUID = Field(foreign_key="safeguarding_alerts.id", index=True)
    # The exact bytes that are signed and sent.
    body: str = Field(max_length=2000)
    status: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    attempts: int = 0
    created_at: datetime = utc_field(default_now=True)
    next_attempt_at: datetime = utc_field()
    # A claim by one process, so two never send the same delivery at the same moment;
    # a claim that outlives its lease (a crashed process) is taken over.
    claimed_until: datetime | None = utc_field(nullable=True)
    last_attempt_at: datetime | None = utc_field(nullable=True)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=300)
    url: str | None = Field(default=None, max_length=2000)
    delivered_at: datetime | None = utc_field(nullable=True)


# --- API shapes ---------------------------------------------------------------------

class AlertSignal(ApiModel):
    kind: Literal["symbol", "placement"]
    button_id: str
    label: str | None = None
    scale_value: str | None = None
    rule: Literal["marked", "sensitive_topic"]


class AlertOut(ApiModel):
    id: uuid.UUID
    child_id: uuid.UUID
    preferred_name: str | None = PydField(default=None, description="The child's preferred "
                                          "name (alerts are shown only to those who may see "
                                          "the child).")
    entry_id: uuid.UUID
    status: Literal["open", "acknowledged"]
    escalated: bool
    signals: list[AlertSignal]
    worker_id: uuid.UUID | None
    raised_at: datetime
    escalate_at: datetime
    escalated_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: uuid.UUID | None
    outcome: str | None


class AlertAcknowledge(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"outcome": "Spoke with Robin and the school DSL the same day; referral made."}]})
    outcome: SafeText = PydField(min_length=1, max_length=4000,
                            description="What was done about it.")


class WebhookDeliveryOut(ApiModel):
    id: uuid.UUID
    event: str
    alert_id: uuid.UUID
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    url: str | None
    delivered_at: datetime | None
