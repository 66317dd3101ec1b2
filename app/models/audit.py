"""Audit events: an append-only record of every read and write of a child's data.

Never a name, note or media: only who, what, which child and object, when, from where.
"""

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from app.models.common import utc_field


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = utc_field(default_now=True)
    actor_type: str = Field(max_length=16)  # staff | capture | system
    actor_id: uuid.UUID | None = None
    actor_role: str | None = Field(default=None, max_length=32)
    action: str = Field(max_length=64)
    child_id: uuid.UUID | None = Field(default=None, index=True)
    object_type: str | None = Field(default=None, max_length=32)
    object_id: str | None = Field(default=None, max_length=64)
    client_ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)
    request_id: str | None = Field(default=None, max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditEventOut(SQLModel):
    """An event of a child's trail as the team manager sees it."""

    id: int
    occurred_at: datetime
    actor_type: str
    actor_id: uuid.UUID | None
    actor_role: str | None
    actor_name: str | None = None
    action: str
    object_type: str | None
    object_id: str | None
    client_ip: str | None
    user_agent: str | None
    request_id: str | None
