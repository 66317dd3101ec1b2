"""Whose voice has not been heard: a team manager's view of their team's children.

Per child: days since the child's own voice (`child_direct`, `child_assisted`) was last
captured, at any time; and for the visits started in the period: how many, how many had
none of the child's own voice (adult-focused), the entries made in them by source (the
child's own, an adult's interpretation, a parent's or carer's report) and by kind; with
consents that allow anything now, consent reviews due, open and overdue alerts, and the
allocated worker. Per worker the same summed over the children they hold now; team totals.

Most urgent first: children never heard at all, then those not heard for
`voice_not_heard_days` or more, then the rest; within each, overdue alerts first, then the
longest without their own voice. Every figure is computed by a handful of GROUP BY queries
over the whole team, never a query per child, and links to the timeline filtered to the
visits and entries behind it.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import case, exists
from sqlmodel import func, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Context
from app.core.errors import Invalid
from app.models.capture import CaptureSession, EntryKind, VoiceEntry
from app.models.child import Allocation, Child
from app.models.consent import Consent
from app.models.reports import (ChildVoiceRow, VoiceFigures, VoiceLinks, VoiceReportOut,
                                VoiceStatus, WorkerVoiceRow)
from app.models.safeguarding import SafeguardingAlert
from app.models.staff import Team, User
from app.services import access, audit, consent
from app.services.reports.visits import OWN_VOICE

KINDS: tuple[str, ...] = EntryKind.__args__  # symbols, mat, photo, audio, observation, text
_RANK: dict[str, int] = {"never_heard": 0, "not_heard_recently": 1, "heard": 2}
CHILD_PATH = "/api/v1/children"


def _empty() -> VoiceFigures:
    return VoiceFigures(visits=0, adult_focused_visits=0, entries=0, own_voice_entries=0,
                        adult_interpretation_entries=0, parent_report_entries=0,
                        methods={k: 0 for k in KINDS}, active_consents=0, reviews_due=0,
                        open_alerts=0, overdue_alerts=0)


def _add(total: VoiceFigures, one: VoiceFigures) -> None:
    for name in ("visits", "adult_focused_visits", "entries", "own_voice_entries",
                 "adult_interpretation_entries", "parent_report_entries", "active_consents",
                 "reviews_due", "open_alerts", "overdue_alerts"):
        setattr(total, name, getattr(total, name) + getattr(one, name))
    for kind, count in one.methods.items():
        total.methods[kind] = total.methods.get(kind, 0) + count


class _Links:
    """The links of every child's row: the query strings are the same for all of them."""

    def __init__(self, since: datetime, until: datetime) -> None:
        period = [("since", since.isoformat()), ("until", until.isoformat())]
        own = [("source", s) for s in OWN_VOICE]

        def query(*extra: tuple[str, str], dated: bool = True) -> str:
            return "/timeline?" + urlencode((period if dated else []) + list(extra))

        self.queries = {
            "timeline": query(), "last_own_voice": query(*own, dated=False),
            "adult_focused_visits": query(("adult_focused", "true")),
            "own_voice_entries": query(*own),
            "adult_interpretation_entries": query(("source", "adult_interpretation")),
            "parent_report_entries": query(("source", "parent_or_carer_report"))}
        self.methods = {k: query(("kind", k)) for k in KINDS}

    def of(self, child_id: uuid.UUID) -> VoiceLinks:
        base = f"{CHILD_PATH}/{child_id}"
        return VoiceLinks(handover=f"{base}/handover", consents=f"{base}/handover#consents",
                          alerts=f"{base}/handover#alerts", sessions=f"{base}/sessions",
                          methods={k: base + q for k, q in self.methods.items()},
                          **{name: base + q for name, q in self.queries.items()})


def period(settings: Settings, since: datetime | None,
           until: datetime | None) -> tuple[datetime, datetime]:
    until = until or utcnow()
    since = since or until - timedelta(days=settings.voice_report_period_days)
    if until <= since:
        raise Invalid("until must be after since", field=["query", "until"])
    if until - since > timedelta(days=3660):
        raise Invalid("the period can be at most ten years", field=["query", "since"])
    return since, until


def voice_report(ctx: Context, settings: Settings, team_id: uuid.UUID | None,
                 since: datetime | None, until: datetime | None) -> VoiceReportOut:
    team_id = access.team_report_for(ctx.actor, team_id)
    since, until = period(settings, since, until)
    db, now = ctx.db, utcnow()
    team = db.get(Team, team_id)
    # Only the columns the report reads (review_reasons needs the date of birth).
    children = {c.id: c for c in db.exec(select(Child.id, Child.preferred_name,
                                                Child.date_of_birth)
                                         .where(Child.team_id == team_id))}
    links = _Links(since, until)
    in_team = select(Child.id).where(Child.team_id == team_id)

    held = {row[0]: (row[1], row[2]) for row in db.exec(
        select(Allocation.child_id, Allocation.user_id, User.full_name)
        .join(User, User.id == Allocation.user_id)
        .where(Allocation.child_id.in_(in_team), Allocation.ended_at.is_(None)))}

    last_own = dict(db.exec(
        select(VoiceEntry.child_id, func.max(VoiceEntry.captured_at))
        .where(VoiceEntry.child_id.in_(in_team), VoiceEntry.source.in_(OWN_VOICE))
        .group_by(VoiceEntry.child_id)).all())

    in_period = (CaptureSession.started_at >= since) & (CaptureSession.started_at < until)
    no_own_voice = ~exists().where(VoiceEntry.session_id == CaptureSession.id,
                                   VoiceEntry.source.in_(OWN_VOICE))
    visits = {row[0]: (row[1], row[2] or 0) for row in db.exec(
        select(CaptureSession.child_id, func.count(),
               func.sum(case((no_own_voice, 1), else_=0)))
        .where(CaptureSession.child_id.in_(in_team), in_period)
        .group_by(CaptureSession.child_id))}

    entries: dict[uuid.UUID, list[tuple[str, str, int]]] = defaultdict(list)
    for child_id, source, kind, count in db.exec(
            select(VoiceEntry.child_id, VoiceEntry.source, VoiceEntry.kind, func.count())
            .join(CaptureSession, CaptureSession.id == VoiceEntry.session_id)
            .where(CaptureSession.child_id.in_(in_team), in_period)
            .group_by(VoiceEntry.child_id, VoiceEntry.source, VoiceEntry.kind)):
        entries[child_id].append((source, kind, count))

    active_consents = dict(db.exec(
        select(Consent.child_id, func.count())
        .where(Consent.child_id.in_(in_team), consent.permitting_clause(now))
        .group_by(Consent.child_id)).all())
    reviews: dict[uuid.UUID, int] = defaultdict(int)
    for due in consent.due_reviews(db, children, now):
        reviews[due.child_id] += 1

    overdue = (SafeguardingAlert.escalated_at.is_not(None)) | \
        (SafeguardingAlert.escalate_at <= now)
    alerts = {row[0]: (row[1], row[2] or 0) for row in db.exec(
        select(SafeguardingAlert.child_id, func.count(),
               func.sum(case((overdue, 1), else_=0)))
        .where(SafeguardingAlert.child_id.in_(in_team),
               SafeguardingAlert.acknowledged_at.is_(None))
        .group_by(SafeguardingAlert.child_id))}

    rows: list[ChildVoiceRow] = []
    for child in children.values():
        figures = _empty()
        figures.visits, figures.adult_focused_visits = visits.get(child.id, (0, 0))
        for source, kind, count in entries.get(child.id, []):
            figures.entries += count
            figures.methods[kind] = figures.methods.get(kind, 0) + count
            if source in OWN_VOICE:
                figures.own_voice_entries += count
            elif source == "adult_interpretation":
                figures.adult_interpretation_entries += count
            elif source == "parent_or_carer_report":
                figures.parent_report_entries += count
        figures.active_consents = active_consents.get(child.id, 0)
        figures.reviews_due = reviews.get(child.id, 0)
        figures.open_alerts, figures.overdue_alerts = alerts.get(child.id, (0, 0))
        last = last_own.get(child.id)
        days = max(0, (now - last).days) if last else None
        status: VoiceStatus = "never_heard" if last is None else \
            "not_heard_recently" if days >= settings.voice_not_heard_days else "heard"
        worker_id, worker_name = held.get(child.id, (None, None))
        rows.append(ChildVoiceRow(
            child_id=child.id, preferred_name=child.preferred_name, worker_id=worker_id,
            worker_name=worker_name, status=status, last_own_voice_at=last,
            days_since_own_voice=days,
            own_voice_share=round(figures.own_voice_entries / figures.entries, 3)
            if figures.entries else None,
            figures=figures, links=links.of(child.id)))
    rows.sort(key=lambda r: (_RANK[r.status], -r.figures.overdue_alerts,
                             -(r.days_since_own_voice or 0), -r.figures.adult_focused_visits,
                             r.preferred_name.lower(), str(r.child_id)))

    workers: dict[uuid.UUID | None, WorkerVoiceRow] = {}
    totals = WorkerVoiceRow(worker_id=None, worker_name=None, children=0, never_heard=0,
                            not_heard_recently=0, figures=_empty())
    for row in rows:
        worker = workers.setdefault(row.worker_id, WorkerVoiceRow(
            worker_id=row.worker_id, worker_name=row.worker_name, children=0, never_heard=0,
            not_heard_recently=0, figures=_empty()))
        for into in (worker, totals):
            into.children += 1
            into.never_heard += row.status == "never_heard"
            into.not_heard_recently += row.status == "not_heard_recently"
            _add(into.figures, row.figures)
    by_worker = sorted(workers.values(), key=lambda w: (
        -w.never_heard, -w.not_heard_recently, -w.figures.overdue_alerts,
        w.worker_id is not None, (w.worker_name or "").lower()))

    audit.record_per_child(ctx, "report.voice", [r.child_id for r in rows])
    ctx.db.commit()
    return VoiceReportOut(team_id=team_id, team_name=team.name if team else "", since=since,
                          until=until, generated_at=now,
                          not_heard_days=settings.voice_not_heard_days, children=rows,
                          workers=by_worker, totals=totals)


# --- CSV --------------------------------------------------------------------------------

CSV_COLUMNS = ["child", "child_id", "worker", "status", "days_since_own_voice",
               "last_own_voice_at", "visits", "adult_focused_visits", "entries",
               "own_voice_entries", "adult_interpretation_entries", "parent_report_entries",
               "own_voice_share", *[f"{k}_entries" for k in KINDS], "active_consents",
               "reviews_due", "open_alerts", "overdue_alerts", "timeline"]


def _cell(value: object) -> object:
    """A spreadsheet never runs a cell as a formula (a name could start with '=')."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def to_csv(report: VoiceReportOut, base_url: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in report.children:
        f = row.figures
        writer.writerow([_cell(v) for v in [
            row.preferred_name, str(row.child_id), row.worker_name, row.status,
            row.days_since_own_voice,
            row.last_own_voice_at.isoformat() if row.last_own_voice_at else None,
            f.visits, f.adult_focused_visits, f.entries, f.own_voice_entries,
            f.adult_interpretation_entries, f.parent_report_entries, row.own_voice_share,
            *[f.methods.get(k, 0) for k in KINDS], f.active_consents, f.reviews_due,
            f.open_alerts, f.overdue_alerts, base_url + row.links.timeline]])
    return out.getvalue()
