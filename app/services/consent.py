"""The one place that answers "is this capture or use consented?".

Consent here is the child's or family's agreement to particular captures and uses; it
is separate from the council's lawful basis (public task) for keeping the record, and it
is never a gate on keeping a child safe.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone

from sqlmodel import Session, select

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import Conflict, Forbidden, Invalid
from app.core.pagination import paginate
from app.models.capture import VoiceEntry
from app.models.child import Allocation, Child
from app.models.consent import (Consent, ConsentCreate, ConsentOut, ConsentReview,
                                ConsentReviewDue, ConsentWithdraw, EffectiveConsentOut,
                                ReviewReasonOut, ReviewsDueOut, Scope, ScopePermission)
from app.models.staff import Role
from app.services import access, audit
from app.services.access import Need

CONSENT_NOT_FOUND = "No consent with this id is visible to you."

# Which consent scope a capture of each kind needs. An observation is the worker's own
# professional record, kept under the council's public task, so it needs no capture
# consent; it still names a consent when one covers the plan, so it can be shown there.
CAPTURE_SCOPE: dict[str, Scope | None] = {
    "symbols": Scope.symbols,
    "mat": Scope.symbols,
    "text": Scope.symbols,
    "photo": Scope.photo,
    "audio": Scope.audio,
    "observation": None,
}


def status(consent: Consent, at: datetime | None = None) -> str:
    at = at or utcnow()
    if consent.withdrawn_at is not None:
        return "withdrawn"
    if consent.valid_from > at:
        return "pending"
    if consent.valid_until is not None and consent.valid_until <= at:
        return "expired"
    return "active"


def live_consents(db: Session, child_id: uuid.UUID) -> list[Consent]:
    """A child's consents that are not withdrawn: what capture decisions are made from."""
    return list(db.exec(select(Consent).where(Consent.child_id == child_id,
                                              Consent.withdrawn_at.is_(None))))


def child_dissented(consent: Consent) -> bool:
    return consent.child_assent == "dissented"


def permits(consent: Consent, at: datetime | None = None) -> bool:
    """The effective permission of one consent at a moment: it allows anything only while
    active and only if the child did not dissent. The child's "no" (including a
    non-verbal one) is respected even when an adult agreed."""
    return status(consent, at) == "active" and not child_dissented(consent)


def _covering(db: Session, child_id: uuid.UUID, scope: Scope, start: datetime, end: datetime,
              known: list[Consent] | None = None) -> list[Consent]:
    """Consents covering `scope` at some moment between `start` and `end`."""
    consents = live_consents(db, child_id) if known is None else known
    return [c for c in consents if c.withdrawn_at is None and scope.value in c.scopes
            and not child_dissented(c) and c.valid_from <= end
            and (c.valid_until is None or c.valid_until > start)]


def consent_for_capture(db: Session, child_id: uuid.UUID, kind: str, captured_at: datetime,
                        known: list[Consent] | None = None, *,
                        leeway: timedelta = timedelta(0),
                        not_after: datetime | None = None) -> Consent | None:
    """The consent a capture of `kind` at `captured_at` is made under, or 403 naming the
    missing scope. A withdrawn consent covers nothing, whatever the tablet's clock says.

    `captured_at` is the server's view of the moment (the tablet's time corrected by its
    measured clock offset); clocks still disagree a little, so a consent in force at any
    moment within `leeway` of it covers the capture, though never a moment after
    `not_after` (when the server received it). `known`: the child's live consents, when the
    caller decides many captures at once."""
    scope = CAPTURE_SCOPE[kind]
    start = captured_at - leeway
    end = captured_at + leeway if not_after is None else min(captured_at + leeway, not_after)
    end = max(end, captured_at)
    if scope is None:
        candidates = _covering(db, child_id, Scope.plan, start, end, known)
    else:
        candidates = _covering(db, child_id, scope, start, end, known)
        if not candidates:
            raise Forbidden(
                f"No active consent covers '{scope.value}' for this child at "
                f"{captured_at.isoformat()} (the server's clock"
                f"{f', give or take {leeway.total_seconds():g} s' if leeway else ''}). "
                f"Record a consent with the '{scope.value}' scope before capturing {kind} (a "
                f"consent the child dissented from allows nothing).",
                slug="consent-required", title="Consent required", missing_scope=scope.value)
    if not candidates:
        return None
    # Prefer a consent that also lets the entry reach the plan, then the most recent.
    candidates.sort(key=lambda c: (Scope.plan.value in c.scopes, c.valid_from), reverse=True)
    return candidates[0]


def use_consent_ids(db: Session, child_id: uuid.UUID, scope: Scope) -> set[uuid.UUID]:
    """Consents under which an entry may be used for `scope` now: not withdrawn, covering
    the scope, and not dissented from by the child. An entry's use follows the consent
    that allowed it *now*, so a withdrawal takes its entries out at once. (An expired
    consent stops new captures; it does not pull past words out.)"""
    consents = db.exec(select(Consent).where(Consent.child_id == child_id,
                                             Consent.withdrawn_at.is_(None))).all()
    return {c.id for c in consents if scope.value in c.scopes and not child_dissented(c)}


def plan_consent_ids(db: Session, child_id: uuid.UUID) -> set[uuid.UUID]:
    """Consents under which an entry may be shown in the plan now."""
    return use_consent_ids(db, child_id, Scope.plan)


def family_share_consent_ids(db: Session, child_id: uuid.UUID) -> set[uuid.UUID]:
    """Consents under which an entry may go into a family-facing export now."""
    return use_consent_ids(db, child_id, Scope.share_family)


def family_withheld_reason(entry: VoiceEntry, share_ids: set[uuid.UUID]) -> str | None:
    """Why an entry may not go into a family-facing export now, or None if it may.
    `share_ids` is family_share_consent_ids() for the entry's child."""
    if entry.status != "active":
        return "not_active"
    if entry.consent_id not in share_ids:
        return "no_share_family_consent"
    if entry.other_people and entry.family_cleared_at is None:
        return "other_people_not_cleared"
    return None


def effective(ctx: Context, child_id: uuid.UUID) -> EffectiveConsentOut:
    """What is allowed for this child right now, scope by scope, and under which consents."""
    child = access.child_for(ctx, child_id, Need.read)
    at = utcnow()
    consents = ctx.db.exec(select(Consent).where(Consent.child_id == child.id,
                                                 Consent.withdrawn_at.is_(None))).all()
    scopes = []
    for scope in Scope:
        ids = [c.id for c in consents if scope.value in c.scopes and permits(c, at)]
        scopes.append(ScopePermission(scope=scope, capture_allowed=bool(ids), consent_ids=ids))
    audit.record(ctx, "consent.effective", child_id=child.id, object_type="child",
                 object_id=child.id)
    ctx.db.commit()
    return EffectiveConsentOut(child_id=child.id, at=at, scopes=scopes)


# --- recording consents --------------------------------------------------------------

def consent_out(consent: Consent) -> ConsentOut:
    return ConsentOut(**consent.model_dump(), status=status(consent), permits=permits(consent))


def sixteenth_birthday(date_of_birth: date) -> datetime:
    """Midnight UTC on the day the child turns 16 (29 February births: 1 March)."""
    try:
        day = date_of_birth.replace(year=date_of_birth.year + 16)
    except ValueError:
        day = date(date_of_birth.year + 16, 3, 1)
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def record_consent(ctx: Context, child_id: uuid.UUID, data: ConsentCreate) -> ConsentOut:
    consent = new_consent(ctx, child_id, data, data.valid_from or utcnow())
    audit.record(ctx, "consent.create", child_id=consent.child_id, object_type="consent",
                 object_id=consent.id)
    ctx.db.commit()
    return consent_out(consent)


def new_consent(ctx: Context, child_id: uuid.UUID, data: ConsentCreate,
                valid_from: datetime) -> Consent:
    """A consent as recorded online or offline (a sync item), checked by the same rules;
    added and flushed, neither audited nor committed."""
    child = access.child_for(ctx, child_id, Need.write)
    if data.valid_until is not None and data.valid_until <= valid_from:
        raise Invalid("valid_until must be after valid_from", field=["body", "valid_until"])
    if data.given_by == "best_interests" and valid_from < sixteenth_birthday(child.date_of_birth):
        raise Invalid("A best-interests decision under the Mental Capacity Act applies to a "
                      "young person of 16 or more; for a younger child record the consent of "
                      "a parent or carer with parental responsibility (or the child's own).",
                      field=["body", "given_by"])
    if data.given_by != "parent_or_carer" and (data.giver_name or data.relationship):
        raise Invalid("giver_name and relationship are for a parent or carer's consent",
                      field=["body", "giver_name" if data.giver_name else "relationship"])
    if data.given_by != "best_interests" and (data.decision_maker or data.decision_reason):
        raise Invalid("decision_maker and decision_reason are for a best-interests decision",
                      field=["body", "decision_maker" if data.decision_maker
                             else "decision_reason"])
    consent = Consent(child_id=child.id, given_by=data.given_by, giver_name=data.giver_name,
                      relationship=data.relationship, decision_maker=data.decision_maker,
                      decision_reason=data.decision_reason,
                      scopes=sorted({s.value for s in data.scopes}), method=data.method,
                      child_assent=data.child_assent, assent_signs=data.assent_signs,
                      valid_from=valid_from, valid_until=data.valid_until, notes=data.notes,
                      recorded_by=ctx.user.id)
    ctx.db.add(consent)
    ctx.db.flush()
    return consent


def list_consents(ctx: Context, child_id: uuid.UUID, limit: int, cursor: str | None) -> dict:
    child = access.child_for(ctx, child_id, Need.read)
    page = paginate(ctx.db, select(Consent).where(Consent.child_id == child.id),
                    sort_col=Consent.created_at, id_col=Consent.id, limit=limit,
                    cursor=cursor, shape=consent_out)
    audit.record(ctx, "consent.list", child_id=child.id, object_type="child", object_id=child.id)
    ctx.db.commit()
    return page


def _consent_for(ctx: Context, consent_id: uuid.UUID, need: Need) -> Consent:
    return access.record_for(ctx, Consent, consent_id, need, CONSENT_NOT_FOUND)


def withdraw_consent(ctx: Context, consent_id: uuid.UUID, data: ConsentWithdraw) -> ConsentOut:
    consent = _consent_for(ctx, consent_id, Need.write)
    if consent.withdrawn_at is not None:
        raise Conflict("This consent was already withdrawn.",
                       withdrawn_at=consent.withdrawn_at.isoformat())
    consent.withdrawn_at = utcnow()
    consent.withdrawn_by = ctx.user.id
    consent.withdrawal_reason = data.reason
    ctx.db.add(consent)
    audit.record(ctx, "consent.withdraw", child_id=consent.child_id, object_type="consent",
                 object_id=consent.id)
    ctx.db.commit()
    return consent_out(consent)


# --- reviews ---------------------------------------------------------------------------

def review_reasons(consent: Consent, child: Child, allocations: list[Allocation],
                   at: datetime) -> list[ReviewReasonOut]:
    """Why this consent needs a worker to look at it again, if it does:

    - expired: its valid_until has passed (and it was not reviewed since);
    - turned_16_parent_consent: the child is 16 or over and this consent rests on a
      parent's or carer's decision alone (not reviewed since the birthday);
    - worker_changed: a different worker has been allocated since it was recorded or last
      reviewed (the first allocation of a child is not a change).
    """
    if consent.withdrawn_at is not None:
        return []
    reasons = []
    reviewed = consent.reviewed_at
    if consent.valid_until is not None and consent.valid_until <= at and \
            (reviewed is None or reviewed < consent.valid_until):
        reasons.append(ReviewReasonOut(reason="expired", since=consent.valid_until))
    birthday = sixteenth_birthday(child.date_of_birth)
    if consent.given_by == "parent_or_carer" and birthday <= at and \
            (reviewed is None or reviewed < birthday):
        reasons.append(ReviewReasonOut(reason="turned_16_parent_consent", since=birthday))
    checked = max(consent.created_at, reviewed) if reviewed else consent.created_at
    ordered = sorted(allocations, key=lambda a: a.started_at)
    changes = [a for a in ordered[1:] if checked < a.started_at <= at]
    if changes:
        reasons.append(ReviewReasonOut(reason="worker_changed", since=changes[-1].started_at))
    return reasons


def reviews_due(ctx: Context) -> ReviewsDueOut:
    """Consents due for review: a worker's own children, a manager's team's children.

    Not paginated: it is a to-do list bounded by the caller's caseload."""
    user = access.require_staff(ctx.actor)
    if user.role == Role.admin:
        raise Forbidden("Consent reviews are for the workers and managers who hold "
                        "children's records.")
    children = {c.id: c for c in ctx.db.exec(select(Child).where(
        access.visible_child_ids_clause(user)))}
    items = due_reviews(ctx.db, children, utcnow())
    for child_id in dict.fromkeys(i.child_id for i in items):
        audit.record(ctx, "consent.reviews_due", child_id=child_id, object_type="child",
                     object_id=child_id)
    ctx.db.commit()
    return ReviewsDueOut(items=items)


def due_reviews(db: Session, children: dict[uuid.UUID, Child],
                at: datetime) -> list[ConsentReviewDue]:
    """The consents of these children due for review at `at`: two queries for any number
    of children (consents, allocations), oldest consent first."""
    items: list[ConsentReviewDue] = []
    if not children:
        return items
    ids = list(children)
    consents = db.exec(select(Consent).where(Consent.child_id.in_(ids),
                                             Consent.withdrawn_at.is_(None))
                       .order_by(Consent.created_at, Consent.id)).all()
    allocations: dict[uuid.UUID, list[Allocation]] = {}
    for allocation in db.exec(select(Allocation).where(Allocation.child_id.in_(ids))):
        allocations.setdefault(allocation.child_id, []).append(allocation)
    for consent in consents:
        reasons = review_reasons(consent, children[consent.child_id],
                                 allocations.get(consent.child_id, []), at)
        if reasons:
            items.append(ConsentReviewDue(consent_id=consent.id, child_id=consent.child_id,
                                          reasons=reasons, consent=consent_out(consent)))
    return items


def permitting_clause(at: datetime):  # noqa: ANN201 - a SQL expression
    """A WHERE clause on Consent: the consents that allow anything at `at` (the same rule
    as permits(), in SQL, for counting them across many children at once)."""
    return (Consent.withdrawn_at.is_(None) & (Consent.valid_from <= at)
            & (Consent.valid_until.is_(None) | (Consent.valid_until > at))
            & (Consent.child_assent != "dissented"))


def review_consent(ctx: Context, consent_id: uuid.UUID, data: ConsentReview) -> ConsentOut:
    """The allocated worker has looked at this consent again (with the child and family)
    and it still stands; clears the review flags raised up to now. To change what was
    agreed, withdraw it and record a new one."""
    consent = _consent_for(ctx, consent_id, Need.write)
    if consent.withdrawn_at is not None:
        raise Conflict("This consent was withdrawn; there is nothing to review.",
                       withdrawn_at=consent.withdrawn_at.isoformat())
    consent.reviewed_at = utcnow()
    consent.reviewed_by = ctx.user.id
    consent.review_note = data.note
    ctx.db.add(consent)
    audit.record(ctx, "consent.review", child_id=consent.child_id, object_type="consent",
                 object_id=consent.id)
    ctx.db.commit()
    return consent_out(consent)


def withdrawn_ids(db: Session, consent_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Of these consents, the ones withdrawn. Media captured under a withdrawn consent is
    no longer shown or served (the entry itself stays in the record)."""
    ids = {i for i in consent_ids if i is not None}
    if not ids:
        return set()
    return set(db.exec(select(Consent.id).where(Consent.id.in_(ids),
                                                Consent.withdrawn_at.is_not(None))))
