"""The handover: what a worker new to a child reads first, so they do not start from
nothing. How the child communicates; what matters to them now and what changed lately;
their standing wishes from the plan; open alerts; consents and reviews due; everyone who
held them before; and the last visits with what the child said in each.

It shows what the rules let the caller see today and no more: entries as the entries list
shows them to staff (media hidden when its consent was withdrawn), the plan as the plan
shows it (only entries whose consent covers `plan`), alerts only to those who may see
them. Its reads are bounded (the newest `handover_recent_entries` entries, the last
`handover_visits` visits), so a long record costs no more than a short one.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlmodel import select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Context
from app.core.errors import Forbidden
from app.models.capture import CaptureSession, VoiceEntry
from app.models.child import (Allocation, AllocationOut, BoardPreferences, Child,
                              Communication)
from app.models.consent import Consent
from app.models.plan import SECTIONS
from app.models.reports import (Answer, Change, HandoverOut, PinnedWish, StandingWishes)
from app.models.safeguarding import SafeguardingAlert
from app.models.staff import User
from app.services import access, audit, consent, plans
from app.services.access import Need
from app.services.reports.visits import (ANSWER_COLUMNS, COMPARABLE, answer, topic_answers,
                                         topic_key, visits_out)
from app.services.safeguarding.alerts import alert_out

MATTERS_NOW_MAX = 50


def _matters_and_changes(entries: list, changed_since) -> tuple[  # noqa: ANN001
        list[Answer], list[Change]]:
    """The latest answer per topic, and per topic its latest change of answer (when it
    came after `changed_since`); both newest first. `entries` are newest first."""
    latest: dict[str, tuple] = {}
    changes: dict[str, tuple] = {}
    # The next answer in time, walking back. A card on a mat moves between columns;
    # symbols change for symbols: answers are compared with answers of the same kind.
    later: dict[tuple[str, str], tuple] = {}
    for entry in entries:
        for topic, words in topic_answers(entry):
            key = topic_key(topic)
            latest.setdefault(key, (entry, topic, words))
            if entry.kind not in COMPARABLE:
                continue
            same = (key, entry.kind)
            after = later.get(same)
            if after is not None and key not in changes and \
                    topic_key(words) != topic_key(after[2]) and \
                    after[0].captured_at >= changed_since:
                changes[key] = ((entry, topic, words), after)
            later[same] = (entry, topic, words)
    matters = sorted(latest.values(), key=lambda a: a[0].captured_at, reverse=True)
    moved = sorted(changes.values(), key=lambda c: c[1][0].captured_at, reverse=True)
    return ([answer(*a) for a in matters[:MATTERS_NOW_MAX]],
            [Change(topic=after[1], before=answer(*before), after=answer(*after))
             for before, after in moved])


def _standing_wishes(db, child: Child) -> StandingWishes:  # noqa: ANN001
    plan = plans.build_plan(db, child, latest=0)
    text = {s.key: s.text for s in plan.sections}
    pinned = [PinnedWish(section_key=s.key, section_title=SECTIONS[s.key], entry=e)
              for s in plan.sections for e in s.pinned_entries]
    return StandingWishes(wishes_text=text.get("my_wishes_and_feelings", ""),
                          important_text=text.get("important_to_me", ""), pinned=pinned)


def _may_see_alerts(ctx: Context, child_id: uuid.UUID) -> bool:
    try:
        access.child_for(ctx, child_id, Need.safeguard)
    except Forbidden:
        return False
    return True


def handover(ctx: Context, settings: Settings, child_id: uuid.UUID) -> HandoverOut:
    child = access.child_for(ctx, child_id, Need.read)
    db, now = ctx.db, utcnow()

    recent = list(db.exec(select(*ANSWER_COLUMNS).where(VoiceEntry.child_id == child.id,
                                                        VoiceEntry.status == "active")
                          .order_by(VoiceEntry.captured_at.desc(), VoiceEntry.id.desc())
                          .limit(settings.handover_recent_entries)))
    matters, changes = _matters_and_changes(
        recent, now - timedelta(days=settings.handover_changed_days))

    sessions = list(db.exec(select(CaptureSession).where(CaptureSession.child_id == child.id)
                            .order_by(CaptureSession.started_at.desc(),
                                      CaptureSession.id.desc())
                            .limit(settings.handover_visits)))
    visits, _ = visits_out(db, sessions, settings.visit_entries_shown)

    alerts_shown = _may_see_alerts(ctx, child.id)
    alerts = list(db.exec(select(SafeguardingAlert).where(
        SafeguardingAlert.child_id == child.id, SafeguardingAlert.acknowledged_at.is_(None))
        .order_by(SafeguardingAlert.raised_at.desc()))) if alerts_shown else []

    consents = list(db.exec(select(Consent).where(Consent.child_id == child.id,
                                                  Consent.withdrawn_at.is_(None))
                            .order_by(Consent.created_at.desc(), Consent.id.desc())))
    reviews = consent.due_reviews(db, {child.id: child}, now)

    held = list(db.exec(select(Allocation, User.full_name)
                        .join(User, User.id == Allocation.user_id, isouter=True)
                        .where(Allocation.child_id == child.id)
                        .order_by(Allocation.started_at, Allocation.id)))
    allocations = [AllocationOut.model_validate(a).model_copy(update={"worker_name": name})
                   for a, name in held]
    current = next((a for a in allocations if a.ended_at is None), None)

    out = HandoverOut(
        child_id=child.id, preferred_name=child.preferred_name,
        date_of_birth=child.date_of_birth, team_id=child.team_id,
        communication=Communication.model_validate(child.communication or {}),
        board_preferences=BoardPreferences.model_validate(child.board_preferences or {}),
        allocated_worker_id=current.user_id if current else None,
        allocated_worker_name=current.worker_name if current else None,
        matters_now=matters, changed_lately=changes,
        standing_wishes=_standing_wishes(db, child), alerts_shown=alerts_shown,
        open_alerts=[alert_out(a) for a in alerts],
        consents=[consent.consent_out(c) for c in consents], reviews_due=reviews,
        allocations=allocations, last_visits=visits)
    events = [("handover.read", child.id, "child", child.id)]
    events += [("alert.read", child.id, "alert", a.id) for a in alerts]
    audit.record_many(ctx, events)
    ctx.db.commit()
    return out
