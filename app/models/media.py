"""Media: the photos and recordings a voice entry carries, and the files made from them.

A `Media` row is one upload, as learned from its bytes; its `MediaFile` rows are the files
kept for it, each named by the SHA-256 of its bytes in the media store (content-addressed:
two rows with the same bytes share one blob). Roles:

- `stored`: the clean copy (EXIF/GPS/XMP or container metadata removed), in the format sent;
- `display`: a browser rendition, only when `stored` is not one (HEIC → JPEG);
- `thumbnail`: photos only;
- `playback`: audio only, AAC in M4A (may be the same blob as `stored`).

The bytes as uploaded are never kept: only their checksum and size.
"""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field as PydField
from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.models.common import ApiModel, SafeText, UtcDatetime, id_field, utc_field

MediaKind = Literal["photo", "audio"]
FileRole = Literal["stored", "display", "thumbnail", "playback"]


class Media(SQLModel, table=True):
    __tablename__ = "media"
    id: uuid.UUID = id_field()
    # The upload's idempotency key (made on the tablet). For a photo or audio entry it is
    # also the entry's client_id; for media attached to a symbols/mat entry it is its own.
    client_id: uuid.UUID = Field(unique=True)
    entry_id: uuid.UUID = Field(foreign_key="voice_entries.id", index=True)
    child_id: uuid.UUID = Field(foreign_key="children.id", index=True)
    session_id: uuid.UUID = Field(foreign_key="capture_sessions.id", index=True)
    consent_id: uuid.UUID | None = Field(default=None, foreign_key="consents.id", index=True)
    kind: str = Field(max_length=16)
    format: str = Field(max_length=16)  # sniffed from the bytes: jpeg, heif, webm, …
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    codec: str | None = Field(default=None, max_length=32)
    channels: int | None = None
    sample_rate: int | None = None
    taken_at: datetime | None = utc_field(nullable=True)
    caption: str | None = Field(default=None, max_length=500)
    upload_sha256: str = Field(max_length=64)
    upload_bytes: int = Field(sa_type=BigInteger)
    # Hash of the upload's fields and bytes, to tell a resend from a reused client_id.
    fingerprint: str = Field(max_length=64)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = utc_field(default_now=True)
    # Erasure leaves this row as a tombstone: its files are gone, and who, when and why stay.
    erased_at: datetime | None = utc_field(nullable=True)
    erased_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    erasure_cause: str | None = Field(default=None, max_length=16)  # manager | retention
    erasure_reason: str | None = Field(default=None, max_length=2000)


class MediaFile(SQLModel, table=True):
    __tablename__ = "media_files"
    __table_args__ = (UniqueConstraint("media_id", "role"),)
    id: uuid.UUID = id_field()
    media_id: uuid.UUID = Field(foreign_key="media.id", index=True)
    role: str = Field(max_length=16)
    sha256: str = Field(max_length=64, index=True)
    bytes: int = Field(sa_type=BigInteger)
    content_type: str = Field(max_length=100)
    width: int | None = None
    height: int | None = None


# --- request and response schemas ----------------------------------------------------

class MediaUploadIn(ApiModel):
    """The form fields of `POST /sessions/{id}/media` (besides the `file` part)."""

    model_config = ConfigDict(extra="forbid")
    kind: MediaKind
    client_id: uuid.UUID = PydField(description="Made on the tablet; the idempotency key.")
    captured_at: UtcDatetime = PydField(description="The tablet's clock, with its offset.")
    source: Literal["child_direct", "child_assisted", "adult_interpretation",
                    "parent_or_carer_report"] = "child_direct"
    prompt: SafeText | None = PydField(default=None, max_length=500)
    topic: SafeText | None = PydField(default=None, max_length=100)
    caption: SafeText | None = PydField(default=None, max_length=500)
    entry_client_id: uuid.UUID | None = PydField(
        default=None, description="Attach to this symbols or mat entry of the session "
        "instead of making a new photo/audio entry.")
    keep_taken_at: bool = PydField(default=False, description="Keep the time the photo was "
                                   "taken (from its EXIF) as data; the EXIF itself is never "
                                   "kept.")


class MediaErase(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "The photo shows the child's home address on a letter."}]})
    reason: SafeText = PydField(min_length=1, max_length=2000)


class MediaTombstone(ApiModel):
    """Media that was erased: its files are gone; the record keeps that it existed."""

    id: uuid.UUID
    kind: MediaKind
    erased_at: datetime
    erasure_cause: Literal["manager", "retention"]
    erasure_reason: str | None = None


class MediaOut(ApiModel):
    id: uuid.UUID
    kind: MediaKind
    content_type: str = PydField(description="Of the file at `url`.")
    bytes: int
    sha256: str = PydField(description="Of the file at `url`; also its ETag.")
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    codec: str | None = None
    channels: int | None = None
    sample_rate: int | None = PydField(default=None, description="Audio: samples per "
                                       "second, e.g. 48000.")
    caption: str | None = None
    taken_at: datetime | None = None
    upload_sha256: str = PydField(description="Of the bytes as they were uploaded.")
    url: str
    thumbnail_url: str | None = None
    playback_url: str | None = None
