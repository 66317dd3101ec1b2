"""Audit events: an append-only record of every read and write of a child's data.

Never a name, note or media: only who, what, which child and object, when, from where.

Events form one hash chain per child (and one, `council`, for events that name no child;
`legacy` holds the single chain written before the cut-over). `seq` numbers a chain's
events 1, 2, 3…; the chain's head row is what concurrent appenders to that chain lock,
and nothing else. Checkpoints sign the heads, so events cut off a chain's end are found.
"""

import uuid
from datetime import datetime

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.common import utc_field


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_audit_events_chain_seq"),)
    id: int | None = Field(default=None, primary_key=True)
    chain: str = Field(max_length=40)
    seq: int
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


class AuditChainHead(SQLModel, table=True):
    """The newest event of one chain: appenders lock this row (only this chain's), and the
    checkpoint writer signs what it says."""

    __tablename__ = "audit_chain_heads"
    chain: str = Field(max_length=40, primary_key=True)
    seq: int
    hash: str = Field(max_length=64)
    # The seq the latest checkpoint holds for this chain: heads past it go in the next one.
    checkpointed_seq: int = 0


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement of chain heads (those that moved since the checkpoint before),
    linked to that checkpoint by its digest. `payload` is the exact signed bytes (JSON)."""

    __tablename__ = "audit_checkpoints"
    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    created_at: datetime = utc_field(default_now=True)
    key_id: str = Field(max_length=64)
    payload: str = Field(sa_type=Text)
    signature: str = Field(max_length=128)


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
