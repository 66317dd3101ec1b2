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

from app.models.common import (ApiModel, SafeText, UtcDatetime, id_field, json_field,
                               utc_field)


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
    # A best-interests decision (Mental Capacity Act, 16 or over): who decided and why.
    decision_maker: str | None = Field(default=None, max_length=200)
    decision_reason: str | None = Field(default=None, max_length=2000)
    scopes: list[str] = json_field(list)
    method: str = Field(max_length=32)
    child_assent: str = Field(max_length=32)
    # How the child showed it, e.g. "pushed the tablet away" (dissent) or "smiled and
    # tapped yes".
    assent_signs: str | None = Field(default=None, max_length=1000)
    valid_from: datetime = utc_field()
    valid_until: datetime | None = utc_field(nullable=True)
    notes: str | None = Field(default=None, max_length=4000)
    recorded_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = utc_field(default_now=True)
    withdrawn_at: datetime | None = utc_field(nullable=True)
    withdrawn_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    withdrawal_reason: str | None = Field(default=None, max_length=2000)
    # The last time a worker reviewed this consent (clears the review flags raised before).
    reviewed_at: datetime | None = utc_field(nullable=True)
    reviewed_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    review_note: str | None = Field(default=None, max_length=2000)


class ConsentCreate(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "given_by": "parent_or_carer", "giver_name": "A. Parent", "relationship": "mother",
        "scopes": ["symbols", "photo", "audio", "plan"], "method": "written",
        "child_assent": "agreed", "valid_from": "2026-01-10T09:00:00Z",
        "valid_until": "2027-01-10T09:00:00Z", "notes": "Explained with the consent symbols."}]})
    given_by: Literal["child", "parent_or_carer", "best_interests"] = PydField(
        description="child: the child's own consent, where they have the understanding; "
        "parent_or_carer: someone with parental responsibility (giver_name and relationship "
        "required); best_interests: a Mental Capacity Act decision for a young person of 16 "
        "or more (decision_maker and decision_reason required).")
    giver_name: SafeText | None = PydField(default=None, max_length=200)
    relationship: SafeText | None = PydField(default=None, max_length=100)
    decision_maker: SafeText | None = PydField(default=None, max_length=200,
                                          description="best_interests: who decided (role).")
    decision_reason: SafeText | None = PydField(default=None, max_length=2000,
                                           description="best_interests: why.")
    scopes: list[Scope] = PydField(min_length=1, max_length=6)
    method: Literal["spoken", "signed", "symbols", "written"]
    child_assent: Literal["agreed", "dissented", "not_able_to_express"] = PydField(
        description="The child's own agreement. A child's dissent (including a non-verbal "
        "'no' such as pushing the tablet away) is recorded and respected: a consent the "
        "child dissented from allows nothing.")
    assent_signs: SafeText | None = PydField(default=None, max_length=1000,
                                        description="How the child showed assent or dissent.")
    valid_from: UtcDatetime | None = PydField(default=None, description="Defaults to now.")
    valid_until: UtcDatetime | None = None
    notes: SafeText | None = PydField(default=None, max_length=4000)

    @model_validator(mode="after")
    def _check(self) -> "ConsentCreate":
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if self.given_by == "parent_or_carer" and not (self.giver_name and self.relationship):
            raise ValueError("giver_name and relationship are required when a parent or "
                             "carer gives consent")
        if self.given_by == "best_interests" and not (self.decision_maker and
                                                      self.decision_reason):
            raise ValueError("decision_maker and decision_reason are required for a "
                             "best-interests decision")
        return self


class ConsentWithdraw(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "Child said no to photos at the review."}]})
    reason: SafeText = PydField(min_length=1, max_length=2000)


class ConsentReview(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"note": "New worker met Robin and mum; both still agree."}]})
    note: SafeText = PydField(min_length=1, max_length=2000)


class ConsentOut(ApiModel):
    id: uuid.UUID
    child_id: uuid.UUID
    status: Literal["active", "pending", "expired", "withdrawn"]
    permits: bool = PydField(description="Whether this consent allows anything now: active "
                             "and the child did not dissent.")
    given_by: str
    giver_name: str | None
    relationship: str | None
    decision_maker: str | None = None
    decision_reason: str | None = None
    scopes: list[Scope]
    method: str
    child_assent: str
    assent_signs: str | None = None
    valid_from: datetime
    valid_until: datetime | None
    notes: str | None
    recorded_by: uuid.UUID | None
    created_at: datetime
    withdrawn_at: datetime | None
    withdrawn_by: uuid.UUID | None
    withdrawal_reason: str | None
    reviewed_at: datetime | None = None
    reviewed_by: uuid.UUID | None = None
    review_note: str | None = None


ReviewReason = Literal["expired", "turned_16_parent_consent", "worker_changed"]


class ReviewReasonOut(ApiModel):
    reason: ReviewReason
    since: datetime = PydField(description="When the reason arose.")


class ConsentReviewDue(ApiModel):
    consent_id: uuid.UUID
    child_id: uuid.UUID
    reasons: list[ReviewReasonOut]
    consent: ConsentOut


class ReviewsDueOut(ApiModel):
    items: list[ConsentReviewDue]


class ScopePermission(ApiModel):
    scope: Scope
    capture_allowed: bool = PydField(description="A new capture needing this scope is "
                                     "allowed now.")
    consent_ids: list[uuid.UUID] = PydField(description="Consents that give it now.")


class EffectiveConsentOut(ApiModel):
    child_id: uuid.UUID
    at: datetime
    scopes: list[ScopePermission]
