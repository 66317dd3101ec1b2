"""The handover, the timeline and whose voice has not been heard: JSON, and pages (by
`Accept: text/html` on the same URL, or at `….html`); the voice report also as CSV."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.core.context import Context
from app.core.pages import render, wants_html
from app.models.capture import EntryKind, Source
from app.models.common import UtcDatetime
from app.models.reports import HandoverOut, TimelineOut, VoiceReportOut
from app.routers.deps import AppSettings, NegotiatedCtx, PageCtx, Paging
from app.services.reports import handover as handovers
from app.services.reports import timeline as timelines
from app.services.reports import voice
from app.services.reports.timeline import TimelineQuery

router = APIRouter(tags=["reports"])

_PAGE = {200: {"content": {"text/html": {}}, "description": "JSON, or with "
               "`Accept: text/html` the page a person reads."}}

Since = Annotated[UtcDatetime | None, Query(description="Visits started on or after this.")]
Until = Annotated[UtcDatetime | None, Query(description="Visits started before this.")]


# --- handover ---------------------------------------------------------------------------

def _handover(request: Request, ctx: Context, settings, child_id: uuid.UUID,  # noqa: ANN001
              page: bool) -> HandoverOut | Response:
    out = handovers.handover(ctx, settings, child_id)
    if page:
        return render(request, "reports/handover.html", {"h": out})
    return out


@router.get("/children/{child_id}/handover", response_model=HandoverOut, responses=_PAGE,
            summary="What a worker new to this child reads first")
def get_handover(request: Request, child_id: uuid.UUID, ctx: NegotiatedCtx,
                 settings: AppSettings) -> HandoverOut | Response:
    """How the child communicates, what matters to them now and what changed lately, their
    standing wishes from the plan, open alerts, consents and reviews due, everyone who held
    them, and the last visits with what the child said in each."""
    return _handover(request, ctx, settings, child_id, wants_html(request))


@router.get("/children/{child_id}/handover.html", include_in_schema=False)
def handover_page(request: Request, child_id: uuid.UUID, ctx: PageCtx,
                  settings: AppSettings) -> Response:
    return _handover(request, ctx, settings, child_id, True)


# --- timeline ---------------------------------------------------------------------------

def _timeline(request: Request, ctx: Context, settings, child_id: uuid.UUID,  # noqa: ANN001
              query: TimelineQuery, paging, page: bool) -> TimelineOut | Response:  # noqa: ANN001
    out = timelines.timeline(ctx, settings, child_id, query, paging.limit, paging.cursor)
    if page:
        return render(request, "reports/timeline.html", {"t": out, "q": query})
    return out


def _query(topic: str | None, source: list[Source] | None, kind: list[EntryKind] | None,
           since, until, adult_focused: bool) -> TimelineQuery:  # noqa: ANN001
    return TimelineQuery(topic=topic, sources=list(source or []), kinds=list(kind or []),
                         since=since, until=until, adult_focused=adult_focused)


Topic = Annotated[str | None, Query(max_length=100, description="Entries on this topic.")]
Sources = Annotated[list[Source] | None, Query(max_length=4, description="Entries from "
                                               "these sources (repeat the parameter).")]
Kinds = Annotated[list[EntryKind] | None, Query(max_length=6, description="Entries of "
                                                "these kinds (repeat the parameter).")]
AdultFocused = Annotated[bool, Query(description="Only visits with none of the child's "
                                     "own voice.")]


@router.get("/children/{child_id}/timeline", response_model=TimelineOut, responses=_PAGE,
            summary="A child's entries by visit, newest first, and their answers per topic")
def get_timeline(request: Request, child_id: uuid.UUID, ctx: NegotiatedCtx,
                 settings: AppSettings, paging: Paging, topic: Topic = None,
                 source: Sources = None, kind: Kinds = None, since: Since = None,
                 until: Until = None, adult_focused: AdultFocused = False
                 ) -> TimelineOut | Response:
    """Visits a page at a time (`limit` visits, at most 50; `next_cursor`), each with its
    worker, setting and purpose and the entries made in it; and per topic the child's
    answers across those visits in order, so a small change shows."""
    query = _query(topic, source, kind, since, until, adult_focused)
    return _timeline(request, ctx, settings, child_id, query, paging, wants_html(request))


@router.get("/children/{child_id}/timeline.html", include_in_schema=False)
def timeline_page(request: Request, child_id: uuid.UUID, ctx: PageCtx,
                  settings: AppSettings, paging: Paging, topic: Topic = None,
                  source: Sources = None, kind: Kinds = None, since: Since = None,
                  until: Until = None, adult_focused: AdultFocused = False) -> Response:
    query = _query(topic, source, kind, since, until, adult_focused)
    return _timeline(request, ctx, settings, child_id, query, paging, True)


# --- whose voice has not been heard ------------------------------------------------------

TeamId = Annotated[uuid.UUID | None, Query(description="Your team (the default).")]
ReportSince = Annotated[UtcDatetime | None, Query(description="Start of the period "
                                                  "(default: CHILDVOICE_VOICE_REPORT_"
                                                  "PERIOD_DAYS before `until`).")]
ReportUntil = Annotated[UtcDatetime | None, Query(description="End of the period "
                                                  "(default: now).")]


def _voice(request: Request, ctx: Context, settings, team_id, since, until,  # noqa: ANN001
           shape: str) -> VoiceReportOut | Response:
    out = voice.voice_report(ctx, settings, team_id, since, until)
    if shape == "csv":
        name = f"voice-report-{out.until.date().isoformat()}.csv"
        return Response(voice.to_csv(out, str(request.base_url).rstrip("/")),
                        media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "no-store"})
    if shape == "html":
        return render(request, "reports/voice.html", {"r": out})
    return out


@router.get("/reports/voice", response_model=VoiceReportOut,
            responses={200: {"content": {"text/csv": {}, "text/html": {}},
                             "description": "JSON; CSV with `Accept: text/csv` or "
                             "`format=csv`; the page with `Accept: text/html`."}},
            summary="Whose voice has not been heard (team manager)")
def get_voice_report(request: Request, ctx: NegotiatedCtx, settings: AppSettings,
                     team_id: TeamId = None, since: ReportSince = None,
                     until: ReportUntil = None,
                     format: Literal["json", "csv", "html"] | None = None,  # noqa: A002
                     ) -> VoiceReportOut | Response:
    """Per child of your team, most urgent first (never heard at all at the top): days
    since their own voice was captured, visits in the period and how many were
    adult-focused, the share of their own voice vs adults' interpretation vs a parent's
    report, the methods used, consents and reviews due, open and overdue alerts, the
    allocated worker; per worker the same summed; team totals. Every number links to the
    timeline filtered to what is behind it."""
    shape = format or ("csv" if "text/csv" in request.headers.get("accept", "") else
                       "html" if wants_html(request) else "json")
    return _voice(request, ctx, settings, team_id, since, until, shape)


@router.get("/reports/voice.html", include_in_schema=False)
def voice_report_page(request: Request, ctx: PageCtx, settings: AppSettings,
                      team_id: TeamId = None, since: ReportSince = None,
                      until: ReportUntil = None) -> Response:
    return _voice(request, ctx, settings, team_id, since, until, "html")


@router.get("/reports/voice.csv", include_in_schema=False)
def voice_report_csv(request: Request, ctx: NegotiatedCtx, settings: AppSettings,
                     team_id: TeamId = None, since: ReportSince = None,
                     until: ReportUntil = None) -> Response:
    return _voice(request, ctx, settings, team_id, since, until, "csv")
