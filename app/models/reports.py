"""What the handover, the timeline and the voice report answer (no tables of their own)."""

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import Field as PydField

from app.models.capture import EntryKind, EntryOut, Setting, Source
from app.models.child import AllocationOut, BoardPreferences, Communication
from app.models.common import ApiModel
from app.models.consent import ConsentOut, ConsentReviewDue
from app.models.safeguarding import AlertOut


class VisitOut(ApiModel):
    """One capture session, with what was said in it."""

    id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None
    setting: Setting
    purpose: str | None
    worker_id: uuid.UUID
    worker_name: str | None
    entry_count: int = PydField(description="Entries made in this visit (matching the "
                                "filters, on the timeline).")
    own_voice_count: int = PydField(description="Entries of the child's own voice "
                                    "(child_direct or child_assisted) in the whole visit.")
    adult_focused: bool = PydField(description="None of the child's own voice was captured "
                                   "in this visit.")
    entries: list[EntryOut] = PydField(description="In the order the child made them; at "
                                       "most `visit_entries_shown`.")
    more_entries: int = PydField(description="Entries not shown here: read them at "
                                 "`entries_url`.")
    entries_url: str


class Answer(ApiModel):
    """One answer the child gave on a topic: a symbol choice, a mat placement, words."""

    topic: str = PydField(description="The entry's topic, or for a mat the card placed.")
    answer: str = PydField(description="In words: the symbols chosen, where the card was "
                           "placed, the words said; 'a photo', 'a recording'.")
    kind: EntryKind
    source: Source
    entry_id: uuid.UUID
    session_id: uuid.UUID
    captured_at: datetime


class TopicTrail(ApiModel):
    topic: str
    answers: list[Answer] = PydField(description="Oldest first, across visits.")
    changed: bool = PydField(description="The answer was not always the same.")


class TimelineOut(ApiModel):
    child_id: uuid.UUID
    preferred_name: str
    visits: list[VisitOut] = PydField(description="Newest first.")
    topics: list[TopicTrail] = PydField(description="Per topic, the answers in the visits "
                                        "on this page, oldest first.")
    next_cursor: str | None = None


class Change(ApiModel):
    topic: str
    before: Answer
    after: Answer


class PinnedWish(ApiModel):
    section_key: str
    section_title: str
    entry: EntryOut


class StandingWishes(ApiModel):
    wishes_text: str = PydField(description="The plan's 'My wishes and feelings' section.")
    important_text: str = PydField(description="The plan's 'What is important to me'.")
    pinned: list[PinnedWish] = PydField(description="Entries pinned into the plan, section "
                                        "by section (only those the plan may show).")


class HandoverOut(ApiModel):
    child_id: uuid.UUID
    preferred_name: str
    date_of_birth: date
    team_id: uuid.UUID
    communication: Communication
    board_preferences: BoardPreferences
    allocated_worker_id: uuid.UUID | None
    allocated_worker_name: str | None
    matters_now: list[Answer] = PydField(description="The latest answer per topic, newest "
                                         "first.")
    changed_lately: list[Change] = PydField(description="Topics whose answer moved "
                                            "lately, newest first.")
    standing_wishes: StandingWishes
    alerts_shown: bool = PydField(description="False when your role may not see this "
                                  "child's safeguarding alerts.")
    open_alerts: list[AlertOut]
    consents: list[ConsentOut] = PydField(description="Consents not withdrawn, newest first.")
    reviews_due: list[ConsentReviewDue]
    allocations: list[AllocationOut] = PydField(description="Everyone who has held the "
                                                "child, oldest first.")
    last_visits: list[VisitOut] = PydField(description="Newest first.")


# --- whose voice has not been heard -----------------------------------------------------

VoiceStatus = Literal["never_heard", "not_heard_recently", "heard"]


class VoiceFigures(ApiModel):
    """Counts for one child, or summed over a worker's children or the team."""

    visits: int = PydField(description="Visits (capture sessions) started in the period.")
    adult_focused_visits: int = PydField(description="Of them, visits with none of the "
                                         "child's own voice.")
    entries: int = PydField(description="Entries made in those visits.")
    own_voice_entries: int = PydField(description="child_direct + child_assisted.")
    adult_interpretation_entries: int
    parent_report_entries: int
    methods: dict[str, int] = PydField(description="Entries by kind: symbols, mat, photo, "
                                       "audio, text, observation.")
    active_consents: int
    reviews_due: int
    open_alerts: int
    overdue_alerts: int = PydField(description="Open alerts past their escalation time.")


class VoiceLinks(ApiModel):
    """Where each number comes from: the timeline filtered to the visits and entries
    behind it (the same URL answers a page in a browser), the handover, the sessions."""

    handover: str
    timeline: str = PydField(description="The visits in the period and their entries.")
    last_own_voice: str = PydField(description="Visits with the child's own voice, newest "
                                   "first: the first is the last time they were heard.")
    adult_focused_visits: str
    own_voice_entries: str
    adult_interpretation_entries: str
    parent_report_entries: str
    methods: dict[str, str] = PydField(description="Per kind, the entries of that kind.")
    consents: str
    alerts: str
    sessions: str


class ChildVoiceRow(ApiModel):
    child_id: uuid.UUID
    preferred_name: str
    worker_id: uuid.UUID | None
    worker_name: str | None
    status: VoiceStatus
    last_own_voice_at: datetime | None
    days_since_own_voice: int | None = PydField(description="None: never heard.")
    own_voice_share: float | None = PydField(description="own / all entries in the period; "
                                             "None when there were none.")
    figures: VoiceFigures
    links: VoiceLinks


class WorkerVoiceRow(ApiModel):
    worker_id: uuid.UUID | None = PydField(description="None: children with no worker.")
    worker_name: str | None
    children: int
    never_heard: int
    not_heard_recently: int
    figures: VoiceFigures


class VoiceReportOut(ApiModel):
    team_id: uuid.UUID
    team_name: str
    since: datetime
    until: datetime
    generated_at: datetime
    not_heard_days: int = PydField(description="The threshold (setting "
                                   "CHILDVOICE_VOICE_NOT_HEARD_DAYS).")
    children: list[ChildVoiceRow] = PydField(description="Most urgent first: never heard, "
                                             "then not heard for longest.")
    workers: list[WorkerVoiceRow]
    totals: WorkerVoiceRow
