"""Resumable uploads (tus 1.0) of photos and recordings from an enrolled tablet."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field as PydField
from sqlalchemy import JSON, BigInteger
from sqlmodel import Field, SQLModel

from app.models.common import ApiModel, id_field, json_field, utc_field


class Upload(SQLModel, table=True):
    """One tus upload. Its bytes are immutable chunk files under the media root; `chunks`
    names the accepted ones, in order, and only a compare-and-swap on `offset` (the
    database, not a lock in this process) accepts a chunk, so two PATCHes racing for the
    same offset can never both land."""

    __tablename__ = "uploads"
    id: uuid.UUID = id_field()
    device_id: uuid.UUID = Field(foreign_key="devices.id", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id")
    session_id: uuid.UUID = Field(foreign_key="capture_sessions.id")
    child_id: uuid.UUID = Field(foreign_key="children.id", index=True)
    client_id: uuid.UUID = Field(index=True)      # the media entry's client_id
    length: int = Field(sa_type=BigInteger)
    offset: int = Field(default=0, sa_type=BigInteger)
    # [[start, size, name], …]: the accepted chunk files, contiguous from 0 to offset.
    chunks: list[list[Any]] = json_field(list)
    # The media fields from Upload-Metadata (decoded), as the direct upload takes them.
    fields: dict[str, str] = json_field(dict)
    filename: str | None = Field(default=None, max_length=255)
    created_at: datetime = utc_field(default_now=True)
    expires_at: datetime = utc_field()
    # When the last byte arrived; then what became of it: an entry, or a problem.
    completed_at: datetime | None = utc_field(nullable=True)
    entry_id: uuid.UUID | None = Field(default=None, foreign_key="voice_entries.id")
    problem: dict[str, Any] | None = Field(default=None, sa_type=JSON(none_as_null=True))
    expired_at: datetime | None = utc_field(nullable=True)
    terminated_at: datetime | None = utc_field(nullable=True)


class IncompleteUpload(ApiModel):
    upload_url: str = PydField(description="HEAD it for the offset, then PATCH from there.")
    client_id: uuid.UUID
    offset: int
    length: int
    expires_at: datetime
