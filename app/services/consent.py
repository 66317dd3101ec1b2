"""The one place that answers "is this capture or use consented?".

Consent here is the child's or family's agreement to particular captures and uses; it
is separate from the council's lawful basis (public task) for keeping the record, and it
is never a gate on keeping a child safe.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session, select

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import Conflict, Forbidden, NotFound
from app.core.pagination import paginate
from app.models.consent import Consent, ConsentCreate, ConsentOut, ConsentWithdraw, Scope
from app.services import access, audit
from app.services.access import Need

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


def _covering(db: Session, child_id: uuid.UUID, scope: Scope, at: datetime,
              known: list[Consent] | None = None) -> list[Consent]:
    consents = live_consents(db, child_id) if known is None else known
    return [c for c in consents if c.withdrawn_at is None and scope.value in c.scopes
            and status(c, at) == "active"]


def consent_for_capture(db: Session, child_id: uuid.UUID, kind: str, captured_at: datetime,
                        known: list[Consent] | None = None) -> Consent | None:
    """The consent a capture of `kind` at `captured_at` is made under, or 403 naming the
    missing scope. A withdrawn consent covers nothing, whatever the tablet's clock says.
    `known`: the child's live consents, when the caller decides many captures at once."""
    scope = CAPTURE_SCOPE[kind]
    if scope is None:
        candidates = _covering(db, child_id, Scope.plan, captured_at, known)
    else:
        candidates = _covering(db, child_id, scope, captured_at, known)
        if not candidates:
            raise Forbidden(
                f"No active consent covers '{scope.value}' for this child at {captured_at.isoformat()}. "
                f"Record a consent with the '{scope.value}' scope before capturing {kind}.",
                slug="consent-required", title="Consent required", missing_scope=scope.value)
    if not candidates:
        return None
    # Prefer a consent that also lets the entry reach the plan, then the most recent.
    candidates.sort(key=lambda c: (Scope.plan.value in c.scopes, c.valid_from), reverse=True)
    return candidates[0]


def plan_consent_ids(db: Session, child_id: uuid.UUID) -> set[uuid.UUID]:
    """Consents under which an entry may be shown in the plan now: not withdrawn, covering
    `plan`. (An expired consent stops new captures; it does not pull past words out.)"""
    consents = db.exec(select(Consent).where(Consent.child_id == child_id,
                                             Consent.withdrawn_at.is_(None))).all()
    return {c.id for c in consents if Scope.plan.value in c.scopes}


# --- recording consents --------------------------------------------------------------

def consent_out(consent: Consent) -> ConsentOut:
    return ConsentOut(**consent.model_dump(), status=status(consent))


def record_consent(ctx: Context, child_id: uuid.UUID, data: ConsentCreate) -> ConsentOut:
    child = access.child_for(ctx, child_id, Need.write)
    consent = Consent(child_id=child.id, given_by=data.given_by, giver_name=data.giver_name,
                      relationship=data.relationship,
                      scopes=sorted({s.value for s in data.scopes}), method=data.method,
                      child_assent=data.child_assent, valid_from=data.valid_from or utcnow(),
                      valid_until=data.valid_until, notes=data.notes, recorded_by=ctx.user.id)
    ctx.db.add(consent)
    ctx.db.flush()
    audit.record(ctx, "consent.create", child_id=child.id, object_type="consent",
                 object_id=consent.id)
    ctx.db.commit()
    return consent_out(consent)


def list_consents(ctx: Context, child_id: uuid.UUID, limit: int, cursor: str | None) -> dict:
    child = access.child_for(ctx, child_id, Need.read)
    page = paginate(ctx.db, select(Consent).where(Consent.child_id == child.id),
                    sort_col=Consent.created_at, id_col=Consent.id, limit=limit,
                    cursor=cursor, shape=consent_out)
    audit.record(ctx, "consent.list", child_id=child.id, object_type="child", object_id=child.id)
    ctx.db.commit()
    return page


def withdraw_consent(ctx: Context, consent_id: uuid.UUID, data: ConsentWithdraw) -> ConsentOut:
    access.require_staff(ctx.actor)
    consent = ctx.db.get(Consent, consent_id)
    if consent is None:
        raise NotFound("No consent with this id is visible to you.")
    try:
        access.child_for(ctx, consent.child_id, Need.write)
    except NotFound:
        raise NotFound("No consent with this id is visible to you.") from None
    if consent.withdrawn_at is not None:
        raise Conflict("This consent was already withdrawn.", withdrawn_at=consent.withdrawn_at.isoformat())
    consent.withdrawn_at = utcnow()
    consent.withdrawn_by = ctx.user.id
    consent.withdrawal_reason = data.reason
    ctx.db.add(consent)
    audit.record(ctx, "consent.withdraw", child_id=consent.child_id, object_type="consent",
                 object_id=consent.id)
    ctx.db.commit()
    return consent_out(consent)
