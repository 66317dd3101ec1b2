"""My plan: sections written to the child, pinned entries, the latest voice, snapshots."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from app.core.context import Context
from app.core.clock import utcnow
from app.core.errors import Conflict, Invalid, NotFound
from app.core.pagination import paginate
from app.models.capture import VoiceEntry
from app.models.child import Child
from app.models.plan import (SECTIONS, PlanOut, PlanSection, PlanVersion, PlanVersionOut,
                             PlanVersionSummary, SectionOut, SectionUpdate)
from app.services import access, audit, consent
from app.services.media import records as media
from app.services.access import Need
from app.services.capture import entries_out


def _plan_visible(entry: VoiceEntry, plan_consents: set[uuid.UUID]) -> bool:
    return entry.status == "active" and entry.consent_id in plan_consents


def build_plan(db: Session, child: Child, latest: int) -> PlanOut:
    plan_consents = consent.plan_consent_ids(db, child.id)
    stored = {s.key: s for s in db.exec(select(PlanSection)
                                       .where(PlanSection.child_id == child.id))}
    pinned_ids = {uuid.UUID(i) for s in stored.values() for i in s.pinned_entry_ids}
    pinned = {e.id: e for e in db.exec(select(VoiceEntry).where(VoiceEntry.id.in_(pinned_ids)))
              } if pinned_ids else {}
    shown = {e.id: e for e in entries_out(db, list(pinned.values()))}
    sections = []
    for key, title in SECTIONS.items():
        section = stored.get(key)
        entries = [pinned[uuid.UUID(i)] for i in (section.pinned_entry_ids if section else [])
                   if uuid.UUID(i) in pinned]
        sections.append(SectionOut(
            key=key, title=title, text=section.text if section else "",
            pinned_entries=[shown[e.id] for e in entries if _plan_visible(e, plan_consents)],
            updated_at=section.updated_at if section else None))
    latest_voice = []
    if plan_consents:
        latest_voice = list(db.exec(
            select(VoiceEntry)
            .where(VoiceEntry.child_id == child.id, VoiceEntry.status == "active",
                   VoiceEntry.consent_id.in_(plan_consents))
            .order_by(VoiceEntry.captured_at.desc(), VoiceEntry.id.desc()).limit(latest)))
    stamps = [s.updated_at for s in stored.values()] + [e.received_at for e in latest_voice]
    return PlanOut(child_id=child.id, preferred_name=child.preferred_name, sections=sections,
                   latest_voice=entries_out(db, latest_voice),
                   updated_at=max(stamps) if stamps else None)


def get_plan(ctx: Context, child_id: uuid.UUID, latest: int) -> PlanOut:
    child = access.child_for(ctx, child_id, Need.read)
    plan = build_plan(ctx.db, child, latest)
    audit.record(ctx, "plan.read", child_id=child.id, object_type="plan", object_id=child.id)
    ctx.db.commit()
    return plan


def update_section(ctx: Context, child_id: uuid.UUID, key: str, data: SectionUpdate,
                   latest: int) -> PlanOut:
    child = access.child_for(ctx, child_id, Need.write)
    pinned = list(dict.fromkeys(data.pinned_entry_ids))
    if pinned:
        found = {e.id: e for e in ctx.db.exec(select(VoiceEntry).where(
            VoiceEntry.id.in_(pinned), VoiceEntry.child_id == child.id))}
        plan_consents = consent.plan_consent_ids(ctx.db, child.id)
        for i, entry_id in enumerate(pinned):
            entry = found.get(entry_id)
            if entry is None:
                raise Invalid(f"pinned_entry_ids[{i}] is not an entry of this child",
                              field=["body", "pinned_entry_ids", i])
            if not _plan_visible(entry, plan_consents):
                raise Invalid(f"pinned_entry_ids[{i}] cannot be shown in the plan: it is not "
                              "active, or no current consent covers 'plan' for it",
                              field=["body", "pinned_entry_ids", i])
    section = ctx.db.exec(select(PlanSection).where(PlanSection.child_id == child.id,
                                                    PlanSection.key == key)).first()
    if section is None:
        section = PlanSection(child_id=child.id, key=key)
    section.text = data.text
    section.pinned_entry_ids = [str(i) for i in pinned]
    section.updated_by = ctx.user.id
    section.updated_at = utcnow()
    ctx.db.add(section)
    try:
        ctx.db.flush()
    except IntegrityError:
        ctx.db.rollback()
        raise Conflict("Someone else saved this section at the same moment; reload and "
                       "try again.") from None
    audit.record(ctx, "plan.section.update", child_id=child.id, object_type="plan_section",
                 object_id=section.id)
    ctx.db.commit()
    return build_plan(ctx.db, child, latest)


def _version_out(db: Session, version: PlanVersion) -> PlanVersionOut:
    """The snapshot as published, less any entry that may no longer be shown: a snapshot
    never changes, but a withdrawn consent or a retraction still takes its entry out."""
    plan = PlanOut.model_validate(version.snapshot)
    plan_consents = consent.plan_consent_ids(db, version.child_id)
    shown = [e.id for e in plan.latest_voice] + \
        [e.id for s in plan.sections for e in s.pinned_entries]
    still_active = set(db.exec(select(VoiceEntry.id).where(
        VoiceEntry.id.in_(shown), VoiceEntry.status == "active"))) if shown else set()

    shown_media = media.shown_media_ids(db, list(still_active))

    def visible(entries: list) -> list:
        kept = [e for e in entries if e.id in still_active and e.consent_id in plan_consents]
        for e in kept:  # media whose consent was withdrawn since leaves the snapshot too
            hidden = [m for m in e.media if m.id not in shown_media]
            if hidden:
                e.media = [m for m in e.media if m.id in shown_media]
                e.media_withdrawn = True
        return kept

    plan.latest_voice = visible(plan.latest_voice)
    for section in plan.sections:
        section.pinned_entries = visible(section.pinned_entries)
    return PlanVersionOut(version=version.version, published_at=version.published_at,
                          published_by=version.published_by, plan=plan)


def version_view(db: Session, version: PlanVersion) -> PlanVersionOut:
    """A published version as it may be shown now (for exports)."""
    return _version_out(db, version)


def publish(ctx: Context, child_id: uuid.UUID, latest: int) -> PlanVersionOut:
    """Freeze the plan as it reads now; later edits never change a published version."""
    child = access.child_for(ctx, child_id, Need.write)
    snapshot = build_plan(ctx.db, child, latest).model_dump(mode="json")
    last = ctx.db.exec(select(func.max(PlanVersion.version))
                       .where(PlanVersion.child_id == child.id)).one()
    version = PlanVersion(child_id=child.id, version=(last or 0) + 1, snapshot=snapshot,
                          published_by=ctx.user.id, published_at=utcnow())
    ctx.db.add(version)
    try:
        ctx.db.flush()
    except IntegrityError:
        ctx.db.rollback()
        raise Conflict("Another version was published at the same moment; reload and try "
                       "again.") from None
    audit.record(ctx, "plan.publish", child_id=child.id, object_type="plan_version",
                 object_id=version.id)
    ctx.db.commit()
    return _version_out(ctx.db, version)


def list_versions(ctx: Context, child_id: uuid.UUID, limit: int, cursor: str | None) -> dict:
    child = access.child_for(ctx, child_id, Need.read)
    page = paginate(ctx.db, select(PlanVersion).where(PlanVersion.child_id == child.id),
                    sort_col=PlanVersion.published_at, id_col=PlanVersion.id, limit=limit,
                    cursor=cursor, shape=PlanVersionSummary.model_validate)
    audit.record(ctx, "plan.versions", child_id=child.id, object_type="plan", object_id=child.id)
    ctx.db.commit()
    return page


def version_row(db: Session, child_id: uuid.UUID, number: int) -> PlanVersion | None:
    return db.exec(select(PlanVersion).where(PlanVersion.child_id == child_id,
                                             PlanVersion.version == number)).first()


def get_version(ctx: Context, child_id: uuid.UUID, number: int) -> PlanVersionOut:
    child = access.child_for(ctx, child_id, Need.read)
    version = version_row(ctx.db, child.id, number)
    if version is None:
        raise NotFound(f"This plan has no published version {number}.")
    audit.record(ctx, "plan.version.read", child_id=child.id, object_type="plan_version",
                 object_id=version.id)
    ctx.db.commit()
    return _version_out(ctx.db, version)
