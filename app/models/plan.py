"""My plan: the accessible plan written to the child, with what they said pinned into it."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field as PydField
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.models.capture import EntryOut
from app.models.common import ApiModel, SafeText, id_field, json_field, utc_field

# Section keys and their titles, written to the child.
SECTIONS: dict[str, str] = {
    "about_me": "About me",
    "important_to_me": "What is important to me",
    "my_goals": "My goals",
    "how_to_support_me": "How to support me",
    "my_wishes_and_feelings": "My wishes and feelings",
}
SectionKey = Literal["about_me", "important_to_me", "my_goals", "how_to_support_me",
                     "my_wishes_and_feelings"]


class PlanSection(SQLModel, table=True):
    __tablename__ = "plan_sections"
    __table_args__ = (UniqueConstraint("child_id", "key"),)
    id: uuid.UUID = id_field()
    child_id: uuid.UUID = Field(foreign_key="children.id", index=True)
    key: str = Field(max_length=40)
    text: str = Field(default="", max_length=8000)
    pinned_entry_ids: list[str] = json_field(list)
    updated_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    updated_at: datetime = utc_field(default_now=True)


class PlanVersion(SQLModel, table=True):
    __tablename__ = "plan_versions"
    __table_args__ = (UniqueConstraint("child_id", "version"),)
    id: uuid.UUID = id_field()
    child_id: uuid.UUID = Field(foreign_key="children.id", index=True)
    version: int
    snapshot: dict[str, Any] = json_field()
    published_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    published_at: datetime = utc_field(default_now=True)


class SectionUpdate(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "text": "I like swimming and my dog Biscuit.",
        "pinned_entry_ids": ["5d6e7f80-0000-4000-8000-000000000020"]}]})
    text: SafeText = PydField(default="", max_length=8000)
    pinned_entry_ids: list[uuid.UUID] = PydField(default_factory=list, max_length=20)


class SectionOut(ApiModel):
    key: SectionKey
    title: str
    text: str
    pinned_entries: list[EntryOut]
    updated_at: datetime | None = None


class PlanOut(ApiModel):
    child_id: uuid.UUID
    preferred_name: str
    sections: list[SectionOut]
    latest_voice: list[EntryOut]
    updated_at: datetime | None


class PlanVersionOut(ApiModel):
    version: int
    published_at: datetime
    published_by: uuid.UUID | None
    plan: PlanOut


class PlanVersionSummary(ApiModel):
    version: int
    published_at: datetime
    published_by: uuid.UUID | None
