"""A child's timeline: entries grouped by visit, newest visit first, and per topic the
child's answers across those visits in order, so a small change shows.

Filters: `topic`, `source` and `kind` pick entries (a visit shows when it has one that
matches); `since` / `until` pick visits by when they started; `adult_focused` keeps only
visits with none of the child's own voice. Visits come a page at a time (`limit`, at most
MAX_VISITS; `cursor`), each with at most `visit_entries_shown` entries (the rest are
linked).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists
from sqlmodel import select

from app.core.config import Settings
from app.core.context import Context
from app.core.errors import Invalid
from app.core.pagination import paginate
from app.models.capture import CaptureSession, VoiceEntry
from app.models.reports import TimelineOut
from app.services import access, audit
from app.services.access import Need
from app.services.reports.visits import OWN_VOICE, entry_filters, topic_trails, visits_out

MAX_VISITS = 50  # a page of visits, each with up to visit_entries_shown entries


@dataclass
class TimelineQuery:
    topic: str | None = None
    sources: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    adult_focused: bool = False

    def check(self) -> None:
        if self.since and self.until and self.until <= self.since:
            raise Invalid("until must be after since", field=["query", "until"])


def timeline(ctx: Context, settings: Settings, child_id: uuid.UUID, query: TimelineQuery,
             limit: int, cursor: str | None) -> TimelineOut:
    child = access.child_for(ctx, child_id, Need.read)
    query.check()
    where = entry_filters(query.topic, query.sources, query.kinds)
    stmt = select(CaptureSession).where(CaptureSession.child_id == child.id)
    if query.since:
        stmt = stmt.where(CaptureSession.started_at >= query.since)
    if query.until:
        stmt = stmt.where(CaptureSession.started_at < query.until)
    if where:
        stmt = stmt.where(exists().where(VoiceEntry.session_id == CaptureSession.id, *where))
    if query.adult_focused:
        stmt = stmt.where(~exists().where(VoiceEntry.session_id == CaptureSession.id,
                                          VoiceEntry.source.in_(OWN_VOICE)))
    page = paginate(ctx.db, stmt, sort_col=CaptureSession.started_at,
                    id_col=CaptureSession.id, limit=min(limit, MAX_VISITS), cursor=cursor,
                    descending=True)
    visits, shown = visits_out(ctx.db, page["items"], settings.visit_entries_shown, where)
    audit.record(ctx, "timeline.read", child_id=child.id, object_type="child",
                 object_id=child.id)
    ctx.db.commit()
    return TimelineOut(child_id=child.id, preferred_name=child.preferred_name, visits=visits,
                       topics=topic_trails(shown), next_cursor=page["next_cursor"])
