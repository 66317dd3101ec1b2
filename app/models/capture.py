"""Capture sessions (one piece of direct work) and the voice entries made in them."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, ConfigDict, Field as PydField, model_validator
from sqlalchemy import JSON, false, text
from sqlmodel import Field, Index, SQLModel

from app.models.board import BoardOut
from app.models.common import (ApiModel, SafeText, UtcDatetime, Version, id_field, json_field,
                               utc_field)
from app.models.media import MediaOut, MediaTombstone

Setting = Literal["home", "school", "placement", "other"]
Source = Literal["child_direct", "child_assisted", "adult_interpretation",
                 "parent_or_carer_report"]
EntryKind = Literal["symbols", "mat", "photo", "audio", "observation", "text"]
EntryStatus = Literal["active", "retracted", "superseded", "withdrawn", "erased"]


class CaptureSession(SQLModel, table=True):
    __tablename__ = "capture_sessions"
    # A child's visits newest first (handover, timeline).
    __table_args__ = (Index("ix_capture_sessions_child_started", "child_id", "started_at", "id"),)
    id: uuid.UUID = id_field()
    child_id: uuid.UUID = Field(foreign_key="children.id", index=True)
    worker_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    setting: str = Field(max_length=32)
    purpose: str | None = Field(default=None, max_length=500)
    # [{"board_id": ..., "version": n}]: the exact board versions offered to the child.
    boards: list[dict[str, Any]] = json_field(list)
    device: str | None = Field(default=None, max_length=200)
    started_at: datetime = utc_field(default_now=True)
    ended_at: datetime | None = utc_field(nullable=True)
    expires_at: datetime = utc_field()
    # Only a hash of the capture token is kept, so a database read cannot replay it. A
    # session started offline on a tablet has no capture token.
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    # Who issued the capture token now in use (the opener, or the worker holding the child
    # who issued a new one) and under which of their capture generations (see User).
    token_issued_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    token_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Offline sessions (issue 4): the tablet's id for the session, the enrolled device it
    # came from, when it reached the server and how far the tablet's clock was behind.
    client_id: uuid.UUID | None = Field(default=None, unique=True)
    device_id: uuid.UUID | None = Field(default=None, foreign_key="devices.id", index=True)
    received_at: datetime | None = utc_field(nullable=True)
    clock_offset_ms: int | None = None


class VoiceEntry(SQLModel, table=True):
    __tablename__ = "voice_entries"
    # (child, newest first) is how entries are listed and how the plan finds the latest.
    __table_args__ = (Index("ix_voice_entries_child_captured", "child_id", "captured_at", "id"),
                      # A visit's entries in the order the child made them.
                      Index("ix_voice_entries_session_captured", "session_id", "captured_at",
                            "id"))
    id: uuid.UUID = id_field()
    client_id: uuid.UUID = Field(unique=True)
    child_id: uuid.UUID = Field(foreign_key="children.id")
    session_id: uuid.UUID = Field(foreign_key="capture_sessions.id", index=True)
    kind: str = Field(max_length=16)
    source: str = Field(max_length=32)
    status: str = Field(default="active", max_length=16)
    captured_at: datetime = utc_field()
    received_at: datetime = utc_field(default_now=True)
    prompt: str | None = Field(default=None, max_length=500)
    topic: str | None = Field(default=None, max_length=100, index=True)
    consent_id: uuid.UUID | None = Field(default=None, foreign_key="consents.id", index=True)
    board_id: uuid.UUID | None = Field(default=None, foreign_key="boards.id")
    board_version: int | None = None
    # The kind's own fields as they were at capture: choices with their labels, placements…
    content: dict[str, Any] = json_field()
    note: str | None = Field(default=None, max_length=4000)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    # Hash of the request as sent, so a resend of the same client_id can be told apart
    # from a different entry that reuses it.
    fingerprint: str = Field(max_length=64)
    # Other people appear or are heard in it (a sibling in a photo, a parent's voice): it
    # stays out of family-facing exports until a worker clears it.
    other_people: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # Who, described by role ("younger sibling", "mum's voice"), never by name.
    other_people_who: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False,
                                        sa_column_kwargs={"server_default": text("'[]'")})
    family_cleared_at: datetime | None = utc_field(nullable=True)
    family_cleared_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    family_clearance_reason: str | None = Field(default=None, max_length=2000)
    # Server clock minus the tablet's clock when the entry arrived in a sync batch.
    clock_offset_ms: int | None = None
    # A change of heart ("no, not that one"): the entry stays, marked retracted.
    retracted_at: datetime | None = utc_field(nullable=True)
    retracted_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    retraction_reason: str | None = Field(default=None, max_length=2000)
    # A correction by the worker is a new entry naming the one it supersedes (one each);
    # the old one stays as it was, marked superseded and pointing at it.
    supersedes: uuid.UUID | None = Field(default=None, foreign_key="voice_entries.id",
                                         unique=True)
    superseded_by: uuid.UUID | None = Field(default=None, foreign_key="voice_entries.id")
    superseded_at: datetime | None = utc_field(nullable=True)
    correction_reason: str | None = Field(default=None, max_length=2000)


# --- request schemas ---------------------------------------------------------------

def _each_board_once(board_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(set(board_ids)) != len(board_ids):
        raise ValueError("each board is offered once; board_ids names a board twice")
    return board_ids


SessionBoardIds = Annotated[list[uuid.UUID], PydField(
    min_length=1, max_length=20, description="The boards offered to the child, at least one, "
    "each once; boards they link to (`load_board`) come with them."),
    AfterValidator(_each_board_once)]


class SessionCreate(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "setting": "home", "purpose": "What Robin thinks about weekends with dad",
        "board_ids": ["2b4f0c9a-0000-4000-8000-000000000003"], "device": "ipad-team-north-07"}]})
    setting: Setting
    purpose: SafeText | None = PydField(default=None, max_length=500)
    board_ids: SessionBoardIds
    device: SafeText | None = PydField(default=None, max_length=200)


OtherPerson = Annotated[SafeText, PydField(min_length=1, max_length=100)]
OtherPeople = Annotated[list[OtherPerson], PydField(max_length=10)]


def other_people_fields(value: bool | list[str] | None) -> tuple[bool, list[str]]:
    """`other_people` as sent (true / a list / nothing) -> (present, who)."""
    if isinstance(value, list):
        who = list(dict.fromkeys(v.strip() for v in value if v.strip()))
        return bool(who), who
    return bool(value), []


class _EntryBase(ApiModel):
    model_config = ConfigDict(extra="forbid")
    client_id: uuid.UUID = PydField(description="Made on the tablet; the idempotency key.")
    captured_at: UtcDatetime = PydField(description="The tablet's clock, with its offset.")
    source: Source
    prompt: SafeText | None = PydField(default=None, max_length=500,
                                  description="The question asked, e.g. 'How do you feel at school?'")
    topic: SafeText | None = PydField(default=None, max_length=100)
    note: SafeText | None = PydField(default=None, max_length=4000,
                                description="The worker's note about this entry.")
    other_people: bool | OtherPeople | None = PydField(
        default=None,
        description="Other people appear or are heard in this entry: true, or who by role "
        "(e.g. [\"younger sibling\", \"mum's voice\"]; never a name). Such an entry stays out "
        "of family-facing exports until a worker clears it.")


class SymbolsEntryIn(_EntryBase):
    kind: Literal["symbols"]
    board_id: uuid.UUID
    board_version: Version
    button_ids: list[SafeText] = PydField(min_length=1, max_length=100,
                                     description="In the order the child chose them.")


class Placement(ApiModel):
    model_config = ConfigDict(extra="forbid")
    button_id: SafeText = PydField(min_length=1, max_length=100)
    scale_value: SafeText = PydField(min_length=1, max_length=50)


class MatEntryIn(_EntryBase):
    kind: Literal["mat"]
    board_id: uuid.UUID
    board_version: Version
    scale: list[SafeText] = PydField(min_length=2, max_length=7)
    placements: list[Placement] = PydField(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _placements_on_scale(self) -> "MatEntryIn":
        for i, p in enumerate(self.placements):
            if p.scale_value not in self.scale:
                raise ValueError(f"placements[{i}].scale_value '{p.scale_value}' is not one of "
                                 f"the scale: {self.scale}")
        return self


class ObservationEntryIn(_EntryBase):
    kind: Literal["observation"]
    text: SafeText = PydField(min_length=1, max_length=8000)

    @model_validator(mode="after")
    def _not_direct(self) -> "ObservationEntryIn":
        if self.source == "child_direct":
            raise ValueError("an observation is the worker's reading of the child's signals, "
                             "so its source cannot be child_direct; use adult_interpretation")
        return self


class TextEntryIn(_EntryBase):
    kind: Literal["text"]
    text: SafeText = PydField(min_length=1, max_length=8000)


EntryIn = Annotated[Union[SymbolsEntryIn, MatEntryIn, ObservationEntryIn, TextEntryIn],
                    PydField(discriminator="kind")]

ENTRY_EXAMPLES = {
    "symbols": {"summary": "Symbols chosen on a board", "value": {
        "kind": "symbols", "client_id": "9a1e4b2c-0000-4000-8000-000000000010",
        "captured_at": "2026-03-02T10:15:00+00:00", "source": "child_direct",
        "prompt": "How do you feel about school?", "topic": "school",
        "board_id": "2b4f0c9a-0000-4000-8000-000000000003", "board_version": 1,
        "button_ids": ["happy"]}},
    "mat": {"summary": "Talking-Mats-style sorting", "value": {
        "kind": "mat", "client_id": "9a1e4b2c-0000-4000-8000-000000000011",
        "captured_at": "2026-03-02T10:20:00+00:00", "source": "child_assisted",
        "prompt": "What do you think about these?", "topic": "weekends",
        "board_id": "2b4f0c9a-0000-4000-8000-000000000003", "board_version": 1,
        "scale": ["like", "not sure", "don't like"],
        "placements": [{"button_id": "happy", "scale_value": "like"}]}},
    "observation": {"summary": "The worker's observation", "value": {
        "kind": "observation", "client_id": "9a1e4b2c-0000-4000-8000-000000000012",
        "captured_at": "2026-03-02T10:25:00+00:00", "source": "adult_interpretation",
        "text": "Smiled and reached for the swing picture twice."}},
    "text": {"summary": "Words the child typed or said", "value": {
        "kind": "text", "client_id": "9a1e4b2c-0000-4000-8000-000000000013",
        "captured_at": "2026-03-02T10:30:00+00:00", "source": "child_direct",
        "text": "I want to see my nan more"}},
}


# --- response schemas --------------------------------------------------------------

class SessionBoard(BoardOut):
    """A board as offered in a session, at the exact version the session pinned."""

    linked_from: uuid.UUID | None = PydField(default=None, description="Set for a board not "
                                             "offered itself but reached by links "
                                             "(`load_board`) from this offered board; "
                                             "entries may be made on it all the same.")


class SessionOut(ApiModel):
    id: uuid.UUID
    client_id: uuid.UUID | None = PydField(default=None, description="The tablet's id, for a "
                                           "session started offline.")
    device_id: uuid.UUID | None = None
    child_id: uuid.UUID
    worker_id: uuid.UUID
    setting: Setting
    purpose: str | None
    device: str | None
    status: Literal["open", "ended", "expired"]
    started_at: datetime
    ended_at: datetime | None
    expires_at: datetime
    boards: list[SessionBoard]
    capture_token: str | None = PydField(
        default=None, description="Only in the answer that opens the session: child mode's "
        "bearer token for this session alone. Not retrievable later.")


class SessionBoardRef(ApiModel):
    board_id: uuid.UUID
    version: int
    name: str
    linked_from: uuid.UUID | None = PydField(default=None, description="Set for a board not "
                                             "offered itself but reached by a link "
                                             "(`load_board`) from this offered board.")


class EntryCounts(ApiModel):
    total: int
    by_status: dict[str, int] = PydField(description="`active`, `retracted`, `superseded`…")
    by_kind: dict[str, int] = PydField(description="`symbols`, `mat`, `photo`, `audio`, "
                                       "`observation`, `text`.")
    by_source: dict[str, int] = PydField(description="`child_direct`, `child_assisted`, "
                                         "`adult_interpretation`, `parent_or_carer_report`.")


class SessionSummary(ApiModel):
    """A session as its child's list shows it: who, where, why, which boards, how much."""

    id: uuid.UUID
    client_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None
    child_id: uuid.UUID
    worker_id: uuid.UUID
    worker_name: str
    setting: Setting
    purpose: str | None
    device: str | None
    status: Literal["open", "ended", "expired"]
    started_at: datetime
    ended_at: datetime | None
    expires_at: datetime
    boards: list[SessionBoardRef] = PydField(description="The pinned board versions: those "
                                             "offered, then those they link to.")
    entry_counts: EntryCounts


class SessionDetail(SessionOut):
    """A session read back: as opened (without the capture token), with its worker's name
    and what was captured in it."""

    worker_name: str
    entry_counts: EntryCounts


class SessionBoardsOut(ApiModel):
    session_id: uuid.UUID
    board_preferences: dict[str, Any]
    boards: list[SessionBoard]


class ChoiceOut(ApiModel):
    button_id: str
    label: str | None
    vocalization: str | None


class PlacementOut(ApiModel):
    button_id: str
    label: str | None
    scale_value: str


class EntryOut(ApiModel):
    id: uuid.UUID
    client_id: uuid.UUID
    kind: EntryKind
    child_id: uuid.UUID
    session_id: uuid.UUID
    source: Source
    consent_id: uuid.UUID | None
    captured_at: datetime
    received_at: datetime
    status: EntryStatus
    prompt: str | None = None
    topic: str | None = None
    note: str | None = None
    board_id: uuid.UUID | None = None
    board_version: int | None = None
    choices: list[ChoiceOut] | None = None
    scale: list[str] | None = None
    placements: list[PlacementOut] | None = None
    text: str | None = None
    created_by: uuid.UUID | None = None
    other_people: bool = False
    other_people_who: list[str] = PydField(default_factory=list)
    family_cleared_at: datetime | None = None
    family_cleared_by: uuid.UUID | None = None
    media: list[MediaOut] = PydField(default_factory=list, description="Photos and recordings "
                                     "this entry carries, with their links.")
    media_withdrawn: bool = PydField(default=False, description="True when this entry's "
                                     "media is hidden because its consent was withdrawn.")
    media_erased: list[MediaTombstone] = PydField(
        default_factory=list, description="Media that was erased (by a manager, or at the "
        "end of its retention period): only that it existed, when and why remain.")

    clock_offset_ms: int | None = PydField(default=None, description="Server clock minus the "
                                           "tablet's clock when the entry was synced.")
    retracted_at: datetime | None = PydField(default=None, description="When the child took "
                                             "this back (tablet clock); status is then "
                                             "`retracted` and it leaves the plan.")
    retracted_by: uuid.UUID | None = None
    retraction_reason: str | None = None
    supersedes: uuid.UUID | None = PydField(default=None, description="This entry corrects "
                                            "that one (`POST /entries/{id}/correct`).")
    correction_reason: str | None = None
    superseded_by: uuid.UUID | None = PydField(default=None, description="A correction "
                                               "replaced this entry; status is then "
                                               "`superseded` and it leaves the plan.")
    superseded_at: datetime | None = None

    raised_alert: bool | None = PydField(default=None, description="Whether this entry "
                                         "raised a safeguarding alert; null in child mode.")


class EntryRetract(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "Robin said it was pressed by mistake."}]})
    reason: SafeText = PydField(min_length=1, max_length=2000)


class EntryCorrection(ApiModel):
    """A new entry that supersedes one: the old one is kept, as it was, marked superseded."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reason": "The mat was sorted again with Robin's help.",
        "entry": {"kind": "text", "client_id": "9a1e4b2c-0000-4000-8000-000000000014",
                  "captured_at": "2026-03-02T10:40:00+00:00", "source": "child_assisted",
                  "text": "I want to see my nan on Sundays"}}]})
    reason: SafeText = PydField(min_length=1, max_length=2000)
    entry: EntryIn = PydField(description="The correcting entry, as "
                              "`POST /sessions/{id}/entries` takes it (its own client_id); "
                              "made in the same session, by the same rules.")


class OtherPeopleUpdate(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"other_people": ["younger sibling"]}, {"other_people": False}]})
    other_people: bool | OtherPeople = PydField(
        description="true, false, or who by role (never a name). Changing it "
        "takes back any clearance for family export.")


class FamilyClearance(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "Sibling is in the background only; mum agreed it can be shared."}]})
    reason: SafeText = PydField(min_length=1, max_length=2000)
