"""Children and who holds them (allocations)."""

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field as PydField
from sqlmodel import Field, SQLModel

from app.core.clock import utcnow
from app.models.common import ApiModel, SafeText, id_field, json_field, utc_field


class Child(SQLModel, table=True):
    __tablename__ = "children"
    id: uuid.UUID = id_field()
    preferred_name: str = Field(max_length=100)
    date_of_birth: date
    team_id: uuid.UUID = Field(foreign_key="teams.id", index=True)
    communication: dict[str, Any] = json_field()
    board_preferences: dict[str, Any] = json_field()
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = utc_field(default_now=True)
    updated_at: datetime = utc_field(default_now=True)


class Allocation(SQLModel, table=True):
    __tablename__ = "allocations"
    id: uuid.UUID = id_field()
    child_id: uuid.UUID = Field(foreign_key="children.id", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    started_at: datetime = utc_field(default_now=True)
    ended_at: datetime | None = utc_field(nullable=True)
    allocated_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")


CommunicationMethod = Literal[
    "speech", "makaton", "bsl", "pecs", "symbols", "eye_gaze", "switch_access",
    "objects_of_reference", "gesture", "vocalisations", "facial_expression", "other"]


class Communication(ApiModel):
    """How this child communicates, in words a new worker can act on."""

    model_config = ConfigDict(extra="forbid")
    methods: list[CommunicationMethod] = PydField(default_factory=list, max_length=12)
    yes_signal: SafeText | None = PydField(default=None, max_length=500)
    no_signal: SafeText | None = PydField(default=None, max_length=500)
    happy_signs: SafeText | None = PydField(default=None, max_length=1000)
    upset_signs: SafeText | None = PydField(default=None, max_length=1000)
    notes: SafeText | None = PydField(default=None, max_length=4000)


class BoardPreferences(ApiModel):
    model_config = ConfigDict(extra="forbid")
    symbol_size: Literal["small", "medium", "large", "extra_large"] = "large"
    labels_shown: bool = True
    speech_on: bool = True
    max_rows: int | None = PydField(default=None, ge=1, le=12)
    max_columns: int | None = PydField(default=None, ge=1, le=12)
    symbol_set: SafeText | None = PydField(default=None, max_length=100)


OLDEST_AGE_YEARS = 25


def _plausible_birth(value: date) -> date:
    today = utcnow().date()
    if value > today:
        raise ValueError("a date of birth cannot be in the future")
    try:
        oldest = today.replace(year=today.year - OLDEST_AGE_YEARS)
    except ValueError:  # 29 February
        oldest = today.replace(year=today.year - OLDEST_AGE_YEARS, day=28)
    if value < oldest:
        raise ValueError(f"a date of birth more than {OLDEST_AGE_YEARS} years ago is not a "
                         "child's or young person's this service holds; check the year")
    return value


DateOfBirth = Annotated[date, AfterValidator(_plausible_birth)]


_CHILD_EXAMPLE = {
    "preferred_name": "Robin",
    "date_of_birth": "2015-04-02",
    "team_id": "6f1c2d4e-0000-4000-8000-000000000001",
    "communication": {
        "methods": ["makaton", "symbols"],
        "yes_signal": "Looks at the card and smiles",
        "no_signal": "Turns head away",
        "happy_signs": "Flaps hands, hums",
        "upset_signs": "Covers ears, rocks",
        "notes": "Likes time to answer; count to ten.",
    },
    "board_preferences": {"symbol_size": "large", "labels_shown": True, "speech_on": True},
}


class ChildCreate(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CHILD_EXAMPLE]})
    preferred_name: SafeText = PydField(min_length=1, max_length=100)
    date_of_birth: DateOfBirth
    team_id: uuid.UUID
    communication: Communication = PydField(default_factory=Communication)
    board_preferences: BoardPreferences = PydField(default_factory=BoardPreferences)


class ChildUpdate(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"communication": {"methods": ["makaton", "eye_gaze"], "yes_signal": "Blinks twice"}}]})
    preferred_name: SafeText | None = PydField(default=None, min_length=1, max_length=100)
    date_of_birth: DateOfBirth | None = None
    communication: Communication | None = None
    board_preferences: BoardPreferences | None = None


class ChildOut(ApiModel):
    id: uuid.UUID
    preferred_name: str
    date_of_birth: date
    team_id: uuid.UUID
    communication: Communication
    board_preferences: BoardPreferences
    allocated_worker_id: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime


class AllocationCreate(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"user_id": "0b7d9c1e-0000-4000-8000-000000000002"}]})
    user_id: uuid.UUID


class AllocationOut(ApiModel):
    id: uuid.UUID
    child_id: uuid.UUID
    user_id: uuid.UUID
    worker_name: str | None = None
    started_at: datetime
    ended_at: datetime | None
    allocated_by: uuid.UUID | None
