"""Consent: the child's or family's agreement to particular captures and uses.

This is not the council's lawful basis for holding the record (its public task); it only
decides which captures may be made and where entries may be shown.
"""

import uuid
from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import ConfigDict, Field as PydField, model_validator
from sqlmodel import Field, SQLModel

from app.models.common import ApiModel, UtcDatetime, id_field, json_field, utc_field


class Scope(str, Enum):
    symbols = "symbols"
    photo = "photo"
    audio = "audio"
    plan = "plan"
    share_family = "share_family"
    share_professionals = "share_professionals"


class Consent(SQLModel, table=True):
    __tablename__ = "consents"
    id: uuid.UUID = id_field()
    child_id: uuid.UUID = Field(foreign_key="children.id", index=True)
    given_by: str = Field(max_length=32)
    giver_name: str | None = Field(default=None, max_length=200)
    relationship: str | None = Field(default=None, max_length=100)
    scopes: list[str] = json_field(list)
    method: str = Field(max_length=32)
    child_assent: str = Field(max_length=32)
    valid_from: datetime = utc_field()
    valid_until: datetime | None = utc_field(nullable=True)
    notes: str | None = Field(default=None, max_length=4000)
    recorded_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = utc_field(default_now=True)
    withdrawn_at: datetime | None = utc_field(nullable=True)
    withdrawn_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    withdrawal_reason: str | None = Field(default=None, max_length=2000)


class ConsentCreate(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "given_by": "parent_or_carer", "giver_name": "A. Parent", "relationship": "mother",
        "scopes": ["symbols", "photo", "audio", "plan"], "method": "written",
        "child_assent": "agreed", "valid_from": "2026-01-10T09:00:00Z",
        "valid_until": "2027-01-10T09:00:00Z", "notes": "Explained with the consent symbols."}]})
    given_by: Literal["child", "parent_or_carer", "best_interests"]
    giver_name: str | None = PydField(default=None, max_length=200)
    relationship: str | None = PydField(default=None, max_length=100)
    scopes: list[Scope] = PydField(min_length=1, max_length=6)
    method: Literal["spoken", "signed", "symbols", "written"]
    child_assent: Literal["agreed", "dissented", "not_able_to_express"]
    valid_from: UtcDatetime | None = PydField(default=None, description="Defaults to now.")
    valid_until: UtcDatetime | None = None
    notes: str | None = PydField(default=None, max_length=4000)

    @model_validator(mode="after")
    def _check(self) -> "ConsentCreate":
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if self.given_by == "parent_or_carer" and not self.giver_name:
            raise ValueError("giver_name is required when a parent or carer gives consent")
        return self


class ConsentWithdraw(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "Child said no to photos at the review."}]})
    reason: str = PydField(min_length=1, max_length=2000)


class ConsentOut(ApiModel):
    id: uuid.UUID
    child_id: uuid.UUID
    status: Literal["active", "pending", "expired", "withdrawn"]
    given_by: str
    giver_name: str | None
    relationship: str | None
    scopes: list[Scope]
    method: str
    child_assent: str
    valid_from: datetime
    valid_until: datetime | None
    notes: str | None
    recorded_by: uuid.UUID | None
    created_at: datetime
    withdrawn_at: datetime | None
    withdrawn_by: uuid.UUID | None
    withdrawal_reason: str | None
