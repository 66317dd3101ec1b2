"""Offline-first capture (issue 4): enrolled devices, sync batches and their receipts.

A worker enrolls a tablet once (a device id and a device key, the key shown once and kept
only as a hash). The tablet queues what happens offline and sends it later as a batch; the
server keeps a receipt per item it holds, which is how `/sync/state` tells a restored
tablet what it still owes.
"""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field as PydField, model_validator
from sqlmodel import Field, Index, SQLModel

from app.models.board import BoardOut
from app.models.capture import EntryOut, SessionBoardIds, SessionOut, Setting
from app.models.common import ApiModel, SafeText, UtcDatetime, id_field, utc_field
from app.models.consent import ConsentCreate, ConsentOut
from app.models.upload import IncompleteUpload

ItemType = Literal["consent", "session", "entry", "session_end", "retract"]
ItemStatus = Literal["created", "duplicate", "rejected"]


class Device(SQLModel, table=True):
    __tablename__ = "devices"
    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    name: str = Field(max_length=100)
    # SHA-256 of the device key (a 256-bit random secret), so a database read cannot use it.
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = utc_field(default_now=True)
    # The last time the tablet reached the server with its key and a valid staff token;
    # its offline window runs from here.
    last_seen_at: datetime = utc_field(default_now=True)
    revoked_at: datetime | None = utc_field(nullable=True)
    revoked_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    revoked_reason: str | None = Field(default=None, max_length=500)


class SyncReceipt(SQLModel, table=True):
    """One row per sync item the server holds: the item's client_id is unique, which is
    what makes every item exactly-once however often (and however concurrently) it is sent."""

    __tablename__ = "sync_receipts"
    __table_args__ = (Index("ix_sync_receipts_device_cursor", "device_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    client_id: uuid.UUID = Field(unique=True)
    device_id: uuid.UUID = Field(foreign_key="devices.id")
    item_type: str = Field(max_length=16)
    child_id: uuid.UUID = Field(foreign_key="children.id", index=True)
    # The session or entry the item made or changed.
    object_id: uuid.UUID
    # The item's own time on the tablet's clock (started_at, captured_at, ended_at,
    # retracted_at), the server's clock on arrival, and the difference between the clocks.
    tablet_at: datetime = utc_field()
    received_at: datetime = utc_field(default_now=True)
    clock_offset_ms: int | None = None


# --- devices -----------------------------------------------------------------------

class DeviceCreate(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "iPad team north 07"}]})
    name: SafeText = PydField(min_length=1, max_length=100,
                         description="A label the worker recognises; no child's name.")


class DeviceRevoke(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "Left on a train"}]})
    reason: SafeText | None = PydField(default=None, max_length=500)


class DeviceOut(ApiModel):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    status: Literal["active", "revoked"]
    created_at: datetime
    last_seen_at: datetime
    offline_until: datetime | None = PydField(description="The tablet may start sessions "
                                              "offline until then; null once revoked.")
    revoked_at: datetime | None
    revoked_by: uuid.UUID | None
    revoked_reason: str | None


class DeviceEnrolled(DeviceOut):
    device_key: str = PydField(description="Send as `X-Device-Key` with the worker's staff "
                               "token. Shown only in this answer; keep it in the tablet's "
                               "secure storage.")


class ChildBoards(ApiModel):
    child_id: uuid.UUID
    preferred_name: str
    board_preferences: dict[str, Any]
    boards: list[BoardOut] = PydField(description="The child's personal boards, latest "
                                      "version.")


class DeviceBoardsOut(ApiModel):
    device_id: uuid.UUID
    children: list[ChildBoards] = PydField(description="Each child the device's worker holds.")
    library: list[BoardOut] = PydField(description="The board library, latest versions.")


# --- sync batches --------------------------------------------------------------------

_SYNC_EXAMPLE = {
    "device_id": "3c9a7e10-0000-4000-8000-000000000041",
    "sent_at": "2026-03-02T12:00:05+00:00",
    "items": [
        {"type": "session", "client_id": "7d1c0a52-0000-4000-8000-000000000051",
         "child_id": "4a8b6c2d-0000-4000-8000-000000000002", "setting": "home",
         "purpose": "Weekends", "board_ids": ["2b4f0c9a-0000-4000-8000-000000000003"],
         "started_at": "2026-03-02T10:00:00+00:00"},
        {"type": "entry", "session_client_id": "7d1c0a52-0000-4000-8000-000000000051",
         "kind": "symbols", "client_id": "9a1e4b2c-0000-4000-8000-000000000061",
         "captured_at": "2026-03-02T10:05:00+00:00", "source": "child_direct",
         "prompt": "How do you feel at dad's?", "board_id":
             "2b4f0c9a-0000-4000-8000-000000000003", "board_version": 1,
         "button_ids": ["happy"]},
        {"type": "retract", "client_id": "1f2e3d4c-0000-4000-8000-000000000071",
         "entry_client_id": "9a1e4b2c-0000-4000-8000-000000000061",
         "retracted_at": "2026-03-02T10:06:00+00:00"},
        {"type": "session_end", "client_id": "5b6a7c8d-0000-4000-8000-000000000081",
         "session_client_id": "7d1c0a52-0000-4000-8000-000000000051",
         "ended_at": "2026-03-02T10:30:00+00:00"},
    ],
}


class SyncBatch(ApiModel):
    """A batch from the tablet's queue. Items are checked one by one, so `items` is a list
    of objects here and a malformed item is answered `rejected` without failing the rest."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_SYNC_EXAMPLE]})
    device_id: uuid.UUID
    sent_at: UtcDatetime | None = PydField(default=None, description="The tablet's clock "
                                           "when it sent the batch; the server records the "
                                           "difference to its own clock.")
    # 5000: the highest CHILDVOICE_SYNC_BATCH_MAX_ITEMS may be set to; the service checks
    # the configured limit and says so in a problem document.
    items: list[Any] = PydField(max_length=5000, description="`consent`, `session`, "
                                "`entry`, `session_end` and `retract` items; at most "
                                "CHILDVOICE_SYNC_BATCH_MAX_ITEMS (500 by default).")


class _SessionRef(ApiModel):
    session_client_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one_ref(self) -> "_SessionRef":
        if (self.session_client_id is None) == (self.session_id is None):
            raise ValueError("name the session by exactly one of session_client_id (started "
                             "offline) or session_id (started online)")
        return self


class ConsentItem(ConsentCreate):
    """A consent the worker recorded on the tablet (offline or not): the fields and rules of
    `POST /children/{id}/consents`, with the child and the time it was given."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["consent"]
    client_id: uuid.UUID
    child_id: uuid.UUID
    given_at: UtcDatetime = PydField(description="When it was given (tablet clock). "
                                     "`valid_from` defaults to it, on the server's clock.")


class SessionItem(ApiModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["session"]
    client_id: uuid.UUID
    child_id: uuid.UUID
    setting: Setting
    purpose: SafeText | None = PydField(default=None, max_length=500)
    board_ids: SessionBoardIds
    started_at: UtcDatetime


class EntryItemRef(_SessionRef):
    """The sync-only part of an entry item; the rest is an entry as
    `POST /sessions/{id}/entries` takes it, and is checked by the same rules."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["entry"]


class SessionEndItem(_SessionRef):
    model_config = ConfigDict(extra="forbid")
    type: Literal["session_end"]
    client_id: uuid.UUID
    ended_at: UtcDatetime


class RetractItem(ApiModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["retract"]
    client_id: uuid.UUID
    entry_client_id: uuid.UUID
    retracted_at: UtcDatetime = PydField(description="When the child took it back (tablet "
                                         "clock).")
    reason: str | None = PydField(default=None, max_length=2000)


class SyncResult(ApiModel):
    client_id: str | None = PydField(description="The item's client_id as sent.")
    type: str | None = None
    status: ItemStatus
    session: SessionOut | None = None
    entry: EntryOut | None = None
    consent: ConsentOut | None = None
    problem: dict[str, Any] | None = PydField(default=None, description="For `rejected`: an "
                                              "RFC 9457 problem document. `retry: true` means "
                                              "keep the item queued and send it again later.")


class SyncOut(ApiModel):
    device_id: uuid.UUID
    received_at: datetime
    clock_offset_ms: int | None = PydField(description="Server clock minus the tablet's "
                                           "`sent_at`, in milliseconds.")
    offline_until: datetime
    results: list[SyncResult] = PydField(description="One per item, in the order sent.")


class SyncStateOut(ApiModel):
    device_id: uuid.UUID
    held: list[uuid.UUID] = PydField(description="client_ids of items this device sent that "
                                     "the server holds, oldest first, after `cursor`.")
    cursor: str | None = PydField(description="Pass back as `cursor` to get only what arrived "
                                  "after this answer.")
    more: bool = PydField(description="True when there is more after this page.")
    incomplete_uploads: list[IncompleteUpload] = PydField(
        default_factory=list, description="This device's resumable uploads not yet finished "
        "(nor expired): HEAD each for its offset and PATCH the rest.")
    server_time: datetime
    offline_until: datetime
