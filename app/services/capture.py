"""Capture sessions and voice entries: what the child said, stored once, as it was."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Context
from app.core.errors import Conflict, Forbidden, Invalid, Unauthorized
from app.core.pagination import paginate
from app.core.security import hash_capture_token, new_capture_token
from app.models.board import Board, BoardVersion
from app.models.capture import (CaptureSession, EntryCorrection, EntryCounts, EntryIn,
                                EntryOut, EntryRetract, FamilyClearance, MatEntryIn,
                                OtherPeopleUpdate, SessionBoard, SessionBoardRef,
                                SessionBoardsOut, SessionCreate, SessionDetail, SessionOut,
                                SessionSummary, SymbolsEntryIn, VoiceEntry,
                                other_people_fields)
from app.models.child import Child
from app.models.staff import User
from app.services import access, audit, consent
from app.services.boards import library as boards
from app.services.media import records as media
from app.services.safeguarding import alerts as safeguarding
from app.services.access import Need

ENTRY_NOT_FOUND = "No entry with this id is visible to you."
# Boards reached by links from the offered ones, pinned with them: enough for any real
# set of AAC boards, and a bound on what a hostile web of links costs.
MAX_LINKED_BOARDS = 100


# --- the tablet's clock ------------------------------------------------------------------

# Dates a visit can have happened on: anything else is a tablet's clock gone wrong.
SANE_FROM = datetime(2000, 1, 1, tzinfo=timezone.utc)
SANE_UNTIL = datetime(2100, 1, 1, tzinfo=timezone.utc)


def implausible(field: str, at: datetime, loc: list) -> Invalid:
    return Invalid(f"{field} is {at.date().isoformat()}: no visit happened then. Check the "
                   "tablet's date and time, and record it again.", field=loc,
                   slug="clock-implausible", title="Tablet clock wrong")


def tolerance(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.clock_tolerance_seconds)


def server_view(settings: Settings, at: datetime, field: str, *, received_at: datetime,
                clock_offset_ms: int | None = None) -> datetime:
    """A moment the tablet recorded, as the server's clock saw it: corrected by the device's
    measured clock offset where one is known. The tablet's own time is kept as recorded,
    so a time ahead of the server's clock by more than the tolerance (read either way) is
    refused: the tablet's clock is wrong, and such an entry would sit on top of the plan."""
    if not SANE_FROM <= at < SANE_UNTIL:
        raise implausible(field, at, ["body", field])
    corrected = at + timedelta(milliseconds=clock_offset_ms or 0)
    ahead = max(at, corrected) - received_at
    if ahead > tolerance(settings):
        raise Invalid(f"{field} is {_duration(ahead)} ahead of the server's clock: the "
                      "tablet's clock is wrong. Set its date and time to automatic; an item "
                      "dated in the future cannot be stored.", field=["body", field],
                      slug="clock-ahead", title="Tablet clock ahead",
                      ahead_seconds=round(ahead.total_seconds()))
    return corrected


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def consent_at(ctx: Context, settings: Settings, child_id: uuid.UUID, kind: str,
               captured_at: datetime, *, received_at: datetime,
               clock_offset_ms: int | None = None, known: list | None = None):  # noqa: ANN201
    """The consent a capture is made under, judged on the server's view of `captured_at`
    with the clock tolerance (403 consent-required, 422 clock-ahead)."""
    at = server_view(settings, captured_at, "captured_at", received_at=received_at,
                     clock_offset_ms=clock_offset_ms)
    return consent.consent_for_capture(ctx.db, child_id, kind, at, known,
                                       leeway=tolerance(settings), not_after=received_at)


# --- sessions --------------------------------------------------------------------------

def session_status(session: CaptureSession, at: datetime | None = None) -> str:
    if session.ended_at is not None:
        return "ended"
    return "expired" if session.expires_at <= (at or utcnow()) else "open"


def _pin_linked(db: Session, child_id: uuid.UUID, offered: list[dict]) -> list[dict]:
    """Every board reachable by `load_board` links from the offered ones, and available to
    this child (the library, or the child's own), pinned at its latest version and marked
    with the offered board it was reached from. One round of queries per level of links."""
    pinned = {ref["board_id"] for ref in offered}
    linked: list[dict] = []
    frontier = [(ref["board_id"], ref["board_id"], ref["version"]) for ref in offered]
    while frontier and len(linked) < MAX_LINKED_BOARDS:
        keys = [(uuid.UUID(board_id), version) for _, board_id, version in frontier]
        versions = {(str(v.board_id), v.version): v for v in db.exec(select(BoardVersion).where(
            tuple_(BoardVersion.board_id, BoardVersion.version).in_(keys)))}
        targets: dict[str, str] = {}   # linked board id -> the offered board it came from
        for root, board_id, version in frontier:
            content = versions[(board_id, version)].content if (board_id, version) in \
                versions else {}
            for button in content.get("buttons", []):
                target = (button.get("load_board") or {}).get("id")
                if isinstance(target, str) and target not in pinned:
                    targets.setdefault(target, root)
        ids = [i for i in map(_as_uuid, targets) if i is not None]
        found = {str(b.id): b for b in db.exec(select(Board).where(Board.id.in_(ids)))} \
            if ids else {}
        frontier = []
        for target, root in targets.items():
            board = found.get(target)
            if board is None or board.owner_child_id not in (None, child_id) or \
                    len(linked) >= MAX_LINKED_BOARDS:
                continue  # outside this service, another child's, or past the bound
            pinned.add(str(board.id))
            linked.append({"board_id": str(board.id), "version": board.latest_version,
                           "linked_from": root})
            frontier.append((root, str(board.id), board.latest_version))
    return linked


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def pinned_boards(db: Session, session: CaptureSession) -> list[SessionBoard]:
    """The session's boards at the versions it pinned: those offered, then those linked."""
    return [SessionBoard(**board.model_dump(), linked_from=ref.get("linked_from"))
            for ref, board in zip(session.boards, boards.session_boards(db, session.boards),
                                  strict=True)]


def session_out(db: Session, session: CaptureSession, token: str | None = None) -> SessionOut:
    return SessionOut(id=session.id, client_id=session.client_id, device_id=session.device_id,
                      child_id=session.child_id, worker_id=session.worker_id,
                      setting=session.setting, purpose=session.purpose, device=session.device,
                      status=session_status(session), started_at=session.started_at,
                      ended_at=session.ended_at, expires_at=session.expires_at,
                      boards=pinned_boards(db, session), capture_token=token)


def _entry_counts(db: Session, session_ids: list[uuid.UUID]) -> dict[uuid.UUID, EntryCounts]:
    """Each session's entries counted by status, kind and source, in one query."""
    tally: dict[uuid.UUID, dict[str, Any]] = {
        sid: {"total": 0, "by_status": {}, "by_kind": {}, "by_source": {}} for sid in session_ids}
    if session_ids:
        rows = db.exec(select(VoiceEntry.session_id, VoiceEntry.status, VoiceEntry.kind,
                              VoiceEntry.source, func.count())
                       .where(VoiceEntry.session_id.in_(session_ids))
                       .group_by(VoiceEntry.session_id, VoiceEntry.status, VoiceEntry.kind,
                                 VoiceEntry.source))
        for sid, status, kind, source, n in rows:
            counts = tally[sid]
            counts["total"] += n
            for key, value in (("by_status", status), ("by_kind", kind),
                               ("by_source", source)):
                counts[key][value] = counts[key].get(value, 0) + n
    return {sid: EntryCounts(**counts) for sid, counts in tally.items()}


def _worker_names(db: Session, sessions: list[CaptureSession]) -> dict[uuid.UUID, str]:
    ids = {s.worker_id for s in sessions}
    if not ids:
        return {}
    return dict(db.exec(select(User.id, User.full_name).where(User.id.in_(ids))).all())


def _board_refs(db: Session, sessions: list[CaptureSession]) -> dict[str, str]:
    """Board names by id, for every board these sessions pinned (one query)."""
    ids = {uuid.UUID(ref["board_id"]) for s in sessions for ref in s.boards}
    if not ids:
        return {}
    return {str(i): name for i, name in db.exec(select(Board.id, Board.name)
                                                 .where(Board.id.in_(ids)))}


def list_sessions(ctx: Context, child_id: uuid.UUID, limit: int, cursor: str | None) -> dict:
    """A child's sessions, newest first, with their boards and what was captured."""
    child = access.child_for(ctx, child_id, Need.read)
    page = paginate(ctx.db, select(CaptureSession).where(CaptureSession.child_id == child.id),
                    sort_col=CaptureSession.started_at, id_col=CaptureSession.id, limit=limit,
                    cursor=cursor, descending=True)
    sessions: list[CaptureSession] = page["items"]
    counts = _entry_counts(ctx.db, [s.id for s in sessions])
    names = _worker_names(ctx.db, sessions)
    board_names = _board_refs(ctx.db, sessions)
    now = utcnow()
    page["items"] = [SessionSummary(
        id=s.id, client_id=s.client_id, device_id=s.device_id, child_id=s.child_id,
        worker_id=s.worker_id, worker_name=names.get(s.worker_id, ""), setting=s.setting,
        purpose=s.purpose, device=s.device, status=session_status(s, now),
        started_at=s.started_at, ended_at=s.ended_at, expires_at=s.expires_at,
        boards=[SessionBoardRef(board_id=ref["board_id"], version=ref["version"],
                                name=board_names.get(ref["board_id"], ""),
                                linked_from=ref.get("linked_from")) for ref in s.boards],
        entry_counts=counts[s.id]) for s in sessions]
    audit.record(ctx, "session.list", child_id=child.id, object_type="child",
                 object_id=child.id)
    ctx.db.commit()
    return page


def get_session(ctx: Context, session_id: uuid.UUID) -> SessionDetail:
    access.require_staff(ctx.actor)
    session = access.session_for(ctx, session_id, Need.read)
    shown = SessionDetail(**session_out(ctx.db, session).model_dump(exclude={"capture_token"}),
                          worker_name=_worker_names(ctx.db, [session]).get(session.worker_id, ""),
                          entry_counts=_entry_counts(ctx.db, [session.id])[session.id])
    audit.record(ctx, "session.read", child_id=session.child_id, object_type="session",
                 object_id=session.id)
    ctx.db.commit()
    return shown


def _start_session(ctx: Context, settings: Settings, child_id: uuid.UUID, *, setting: str,
                   purpose: str | None, board_ids: list[uuid.UUID], started_at: datetime,
                   **fields: Any) -> CaptureSession:
    """The one way a session comes to be, online or offline; the caller has checked that
    the worker may write to the child, and audits and commits."""
    pinned = boards.boards_for_session(ctx, child_id, board_ids, started_at=started_at)
    pinned += _pin_linked(ctx.db, child_id, pinned)
    session = CaptureSession(child_id=child_id, worker_id=ctx.user.id, setting=setting,
                             purpose=purpose, boards=pinned, started_at=started_at,
                             expires_at=started_at + timedelta(hours=settings.capture_token_hours),
                             **fields)
    ctx.db.add(session)
    ctx.db.flush()
    return session


def open_session(ctx: Context, settings: Settings, child_id: uuid.UUID,
                 data: SessionCreate) -> SessionOut:
    child = access.child_for(ctx, child_id, Need.write)
    token, token_hash = new_capture_token()
    session = _start_session(ctx, settings, child.id, setting=data.setting,
                             purpose=data.purpose, board_ids=data.board_ids,
                             started_at=utcnow(), device=data.device, token_hash=token_hash,
                             token_issued_by=ctx.user.id,
                             token_generation=ctx.user.capture_generation)
    audit.record(ctx, "session.open", child_id=child.id, object_type="session",
                 object_id=session.id)
    ctx.db.commit()
    return session_out(ctx.db, session, token)


def start_offline_session(ctx: Context, settings: Settings, *, client_id: uuid.UUID,
                          child_id: uuid.UUID, setting: str, purpose: str | None,
                          board_ids: list[uuid.UUID], started_at: datetime, device_id: uuid.UUID,
                          device_name: str, received_at: datetime,
                          clock_offset_ms: int | None) -> CaptureSession:
    """A session a tablet started without the server, arriving later: accepted when the
    worker may write to the child now. It has no capture token. Neither audits nor commits."""
    child = access.child_for(ctx, child_id, Need.write)
    return _start_session(ctx, settings, child.id, setting=setting, purpose=purpose,
                          board_ids=board_ids, started_at=started_at, client_id=client_id,
                          device_id=device_id, device=device_name, received_at=received_at,
                          clock_offset_ms=clock_offset_ms)


def close_session(ctx: Context, settings: Settings, session: CaptureSession,
                  ended_at: datetime) -> bool:
    """End a session unless it has ended already (then the first end stands). Returns whether
    this call ended it. One conditional UPDATE, so two concurrent ends cannot both win.
    A session opened online started on the server's clock and ends on a tablet's: an end a
    little before its start (within the clock tolerance) ends it at its start."""
    slack = tolerance(settings) if session.client_id is None else timedelta(0)
    if ended_at < session.started_at - slack:
        raise Invalid("ended_at is before the session started", field=["body", "ended_at"])
    ended_at = max(ended_at, session.started_at)
    changed = ctx.db.exec(update(CaptureSession)
                          .where(CaptureSession.id == session.id,
                                 CaptureSession.ended_at.is_(None))
                          .values(ended_at=ended_at)).rowcount
    ctx.db.refresh(session)
    return bool(changed)


def end_session(ctx: Context, settings: Settings, session_id: uuid.UUID) -> SessionOut:
    access.require_staff(ctx.actor)
    session = access.session_for(ctx, session_id, Need.write)
    if session.ended_at is None:
        close_session(ctx, settings, session, utcnow())
    audit.record(ctx, "session.end", child_id=session.child_id, object_type="session",
                 object_id=session.id)
    ctx.db.commit()
    return session_out(ctx.db, session)


def session_from_capture_token(db: Session, token: str) -> CaptureSession:
    session = db.exec(select(CaptureSession).where(
        CaptureSession.token_hash == hash_capture_token(token))).first()
    if session is None:
        raise Unauthorized("This capture token is not valid.", slug="invalid-token")
    if session_status(session) != "open":
        raise Unauthorized("This capture session has ended; the worker can start a new one.",
                           slug="session-ended")
    return session


def get_session_boards(ctx: Context, session_id: uuid.UUID) -> SessionBoardsOut:
    session = access.session_for(ctx, session_id, Need.read)
    child = ctx.db.get(Child, session.child_id)
    audit.record(ctx, "session.boards", child_id=session.child_id, object_type="session",
                 object_id=session.id)
    ctx.db.commit()
    return SessionBoardsOut(session_id=session.id, board_preferences=child.board_preferences,
                            boards=pinned_boards(ctx.db, session))


# --- entries ---------------------------------------------------------------------------

def entry_out(entry: VoiceEntry, attached: media.EntryMedia | None = None,
              raised_alert: bool | None = None) -> EntryOut:
    return EntryOut(id=entry.id, client_id=entry.client_id, kind=entry.kind,
                    child_id=entry.child_id, session_id=entry.session_id, source=entry.source,
                    consent_id=entry.consent_id, captured_at=entry.captured_at,
                    received_at=entry.received_at, status=entry.status, prompt=entry.prompt,
                    topic=entry.topic, note=entry.note, board_id=entry.board_id,
                    board_version=entry.board_version, created_by=entry.created_by,
                    other_people=entry.other_people, other_people_who=entry.other_people_who,
                    family_cleared_at=entry.family_cleared_at,
                    family_cleared_by=entry.family_cleared_by,
                    clock_offset_ms=entry.clock_offset_ms, retracted_at=entry.retracted_at,
                    retracted_by=entry.retracted_by, retraction_reason=entry.retraction_reason,
                    supersedes=entry.supersedes, correction_reason=entry.correction_reason,
                    superseded_by=entry.superseded_by, superseded_at=entry.superseded_at,
                    media=attached.items if attached else [],
                    media_withdrawn=attached.withdrawn if attached else False,
                    media_erased=attached.erased if attached else [],
                    raised_alert=raised_alert, **entry.content)


def entries_out(db: Session, entries: list[VoiceEntry], *,
                child_mode: bool = False) -> list[EntryOut]:
    """Entries as the API shows them, with the media each may still show and, except to
    the tablet in child mode, whether each raised an alert (whoever holds the tablet may
    be the one the child fears)."""
    attached = media.media_for_entries(db, entries)
    if child_mode:
        return [entry_out(e, attached.get(e.id)) for e in entries]
    alerted = safeguarding.entries_with_alerts(db, [e.id for e in entries])
    return [entry_out(e, attached.get(e.id), e.id in alerted) for e in entries]


def fingerprint(data: EntryIn) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _board_content(db: Session, session: CaptureSession, data: SymbolsEntryIn | MatEntryIn,
                   lookups: Lookups | None = None) -> tuple[dict[str, Any], dict[str, dict]]:
    """The chosen buttons as they were on that exact board version, or 422 saying why;
    with that version's buttons by id."""
    if str(data.board_id) not in {ref["board_id"] for ref in session.boards}:
        raise Invalid("board_id is not one of the boards offered in this session",
                      field=["body", "board_id"])
    version: BoardVersion | None = (lookups.version(db, data.board_id, data.board_version)
                                    if lookups else
                                    boards.cached_version(db, data.board_id,
                                                          data.board_version))
    if version is None:
        raise Invalid(f"board {data.board_id} has no version {data.board_version}",
                      field=["body", "board_version"])
    buttons = {b["id"]: b for b in version.content["buttons"]}

    def button(button_id: str, loc: list) -> dict:
        if button_id not in buttons:
            raise Invalid(f"button '{button_id}' is not on version {data.board_version} of "
                          "this board", field=loc)
        return buttons[button_id]

    if isinstance(data, SymbolsEntryIn):
        choices = []
        for i, button_id in enumerate(data.button_ids):
            b = button(button_id, ["body", "button_ids", i])
            choices.append({"button_id": button_id, "label": b.get("label"),
                            "vocalization": b.get("vocalization")})
        return {"choices": choices}, buttons
    placements = []
    for i, p in enumerate(data.placements):
        b = button(p.button_id, ["body", "placements", i, "button_id"])
        placements.append({"button_id": p.button_id, "label": b.get("label"),
                           "scale_value": p.scale_value})
    return {"scale": list(data.scale), "placements": placements}, buttons


def stored_entry(db: Session, client_id: uuid.UUID) -> VoiceEntry | None:
    return db.exec(select(VoiceEntry).where(VoiceEntry.client_id == client_id)).first()


_stored = stored_entry


def _same_or_conflict(existing: VoiceEntry, session_id: uuid.UUID, print_: str) -> VoiceEntry:
    if existing.session_id != session_id or existing.fingerprint != print_:
        raise Conflict("This client_id was already used for a different entry. Make a new "
                       "client_id for each new entry; resend only exact copies.",
                       slug="client-id-reused", entry_id=str(existing.id))
    return existing


def add_entry(ctx: Context, session_id: uuid.UUID, data: EntryIn,
              settings: Settings) -> tuple[EntryOut, bool]:
    """Store an entry once. Returns it and whether this call created it; a resend of the
    same entry (same client_id, same content) answers the stored one.

    An entry with a safeguarding signal raises one alert, and is kept even when no consent
    covers its capture: keeping a child safe never waits for consent. Such an entry names
    no consent, so it reaches neither the plan nor a family-facing export."""
    session = access.session_for(ctx, session_id, Need.write)
    child_mode = ctx.actor.capture_session is not None
    entry, created, signals = store_entry(ctx, settings, session, data)
    if not created:
        audit.record(ctx, "entry.resend", child_id=entry.child_id, object_type="entry",
                     object_id=entry.id)
        ctx.db.commit()
        return entries_out(ctx.db, [entry], child_mode=child_mode)[0], False
    if signals:
        safeguarding.raise_alert(ctx, settings, entry, signals)
    audit.record(ctx, "entry.create", child_id=session.child_id, object_type="entry",
                 object_id=entry.id)
    ctx.db.commit()
    return entry_out(entry, raised_alert=None if child_mode else bool(signals)), True


_LOOK_IT_UP: Any = object()


@dataclass
class Lookups:
    """What a run of entries (a sync batch) would otherwise look up once per entry: board
    versions, and each child's live consents. Only for the length of one transaction."""

    versions: dict[tuple[uuid.UUID, int], BoardVersion | None] = field(default_factory=dict)
    consents: dict[uuid.UUID, list] = field(default_factory=dict)

    def version(self, db: Session, board_id: uuid.UUID, number: int) -> BoardVersion | None:
        if (board_id, number) not in self.versions:
            self.versions[(board_id, number)] = boards.cached_version(db, board_id, number)
        return self.versions[(board_id, number)]

    def live_consents(self, db: Session, child_id: uuid.UUID) -> list:
        if child_id not in self.consents:
            self.consents[child_id] = consent.live_consents(db, child_id)
        return self.consents[child_id]


Signals = list[dict[str, Any]]


def prepare_entry(ctx: Context, settings: Settings, session: CaptureSession, data: EntryIn, *,
                  stored: VoiceEntry | None = _LOOK_IT_UP, received_at: datetime | None = None,
                  clock_offset_ms: int | None = None,
                  lookups: Lookups | None = None) -> tuple[VoiceEntry, bool, Signals]:
    """The rules every entry passes however it arrives (`POST /sessions/{id}/entries` or a
    sync batch): idempotency by client_id, child mode's scope, the exact board version,
    safeguarding signals, consent at `captured_at`. The caller has checked access to
    `session`; `stored` is the entry already held under this client_id when the caller
    looked it up in bulk.

    Returns the stored entry and False for a resend of it (409 for a client_id reused for
    other words), or a new entry, built but not added to the database, and True; with the
    safeguarding signals of a new entry, for which the caller raises an alert once it is
    stored. An entry with a signal is kept even when no consent covers its capture."""
    if data.kind == "observation" and not ctx.actor.is_staff:
        raise Forbidden("Observations are the worker's; child mode cannot add them.",
                        slug="capture-token-scope")
    access.child_mode_entry(ctx.actor, data.source, data.note)
    print_ = fingerprint(data)
    existing = _stored(ctx.db, data.client_id) if stored is _LOOK_IT_UP else stored
    if existing is not None:
        return _same_or_conflict(existing, session.id, print_), False, []

    content: dict[str, Any] = {}
    board_id = board_version = None
    signals: Signals = []
    if isinstance(data, (SymbolsEntryIn, MatEntryIn)):
        content, buttons = _board_content(ctx.db, session, data, lookups)
        board_id, board_version = data.board_id, data.board_version
        signals = safeguarding.detect(settings, data.kind, content, buttons)
    else:
        content = {"text": data.text}
    received_at = received_at or utcnow()
    try:
        allowed_by = consent_at(
            ctx, settings, session.child_id, data.kind, data.captured_at,
            received_at=received_at, clock_offset_ms=clock_offset_ms,
            known=lookups.live_consents(ctx.db, session.child_id) if lookups else None)
    except (Forbidden, Invalid):
        # No consent, or the tablet's clock is ahead: kept for safeguarding all the same,
        # under no consent, so it reaches neither the plan nor an export.
        if not signals:
            raise
        allowed_by = None
    has_others, others = other_people_fields(data.other_people)
    entry = VoiceEntry(client_id=data.client_id, child_id=session.child_id,
                       session_id=session.id, kind=data.kind, source=data.source,
                       captured_at=data.captured_at, received_at=received_at,
                       prompt=data.prompt, topic=data.topic, note=data.note,
                       consent_id=allowed_by.id if allowed_by else None, board_id=board_id,
                       board_version=board_version, content=content,
                       created_by=ctx.actor.user.id if ctx.actor.user else None,
                       fingerprint=print_, other_people=has_others, other_people_who=others,
                       clock_offset_ms=clock_offset_ms)
    return entry, True, signals


# Built once per dialect: a new entry, or nothing when its client_id is already stored
# (a concurrent resend that got there first), in one statement and no savepoint.
# (RETURNING, not rowcount: psycopg reports no row count for an INSERT.)
_INSERT_ENTRY = {
    "postgresql": pg_insert(VoiceEntry.__table__).on_conflict_do_nothing(
        index_elements=["client_id"]).returning(VoiceEntry.__table__.c.id),
    "sqlite": sqlite_insert(VoiceEntry.__table__).on_conflict_do_nothing(
        index_elements=["client_id"]).returning(VoiceEntry.__table__.c.id),
}


def store_entry(ctx: Context, settings: Settings, session: CaptureSession, data: EntryIn,
                **kw: Any) -> tuple[VoiceEntry, bool, Signals]:
    """prepare_entry, then insert a new entry; a concurrent request that stored the same
    client_id first makes this a resend. Neither raises the alert, audits nor commits: the
    caller does, last."""
    entry, new, signals = prepare_entry(ctx, settings, session, data, **kw)
    if not new:
        return entry, False, []
    inserted = ctx.db.exec(_INSERT_ENTRY[ctx.db.get_bind().dialect.name],
                           params=entry.model_dump()).first()
    if inserted is None:
        # Another request stored the same client_id a moment ago.
        existing = _stored(ctx.db, data.client_id)
        if existing is None:
            raise Conflict("This entry could not be stored; send it again.")
        return _same_or_conflict(existing, session.id, entry.fingerprint), False, []
    # The row is written: the session holds the entry from here as if it had loaded it.
    make_transient_to_detached(entry)
    ctx.db.add(entry)
    return entry, True, signals


def retract_entry(ctx: Context, entry: VoiceEntry, retracted_at: datetime,
                  reason: str | None = None) -> bool:
    """A change of heart: the entry is kept, marked retracted with who, when and why, and
    leaves the plan. Returns whether this call retracted it (False: it already was).
    Neither audits nor commits. The tablet's `retract` item and the worker's online
    retraction both come here."""
    access.child_for(ctx, entry.child_id, Need.write)
    if retracted_at < entry.captured_at:
        raise Invalid("retracted_at is before the entry was captured",
                      field=["body", "retracted_at"])
    # Conditional, so two concurrent retractions cannot both write who and when.
    changed = ctx.db.exec(update(VoiceEntry)
                          .where(VoiceEntry.id == entry.id, VoiceEntry.status == "active")
                          .values(status="retracted", retracted_at=retracted_at,
                                  retracted_by=ctx.user.id,
                                  retraction_reason=reason)).rowcount
    ctx.db.refresh(entry)
    if changed:
        return True
    if entry.status == "retracted":
        return False
    raise Conflict(f"This entry is {entry.status}, so it cannot be retracted.",
                   slug="entry-not-active", entry_id=str(entry.id))


def retract(ctx: Context, entry_id: uuid.UUID, data: EntryRetract) -> EntryOut:
    """The worker takes an entry back online; asking again answers it as it stands."""
    entry = _entry_for(ctx, entry_id, Need.write)
    if retract_entry(ctx, entry, max(utcnow(), entry.captured_at), data.reason):
        audit.record(ctx, "entry.retract", child_id=entry.child_id, object_type="entry",
                     object_id=entry.id)
    ctx.db.commit()
    return entries_out(ctx.db, [entry])[0]


def correct(ctx: Context, settings: Settings, entry_id: uuid.UUID,
            data: EntryCorrection) -> tuple[EntryOut, bool]:
    """A new entry, in the same session and by the same rules as any, that supersedes
    `entry_id`: the old one is kept as it was, marked superseded, and leaves the plan.
    Returns the new entry and whether this call made it (a resend answers it)."""
    old = _entry_for(ctx, entry_id, Need.write)
    session = ctx.db.get(CaptureSession, old.session_id)
    entry, new, signals = prepare_entry(ctx, settings, session, data.entry)
    if not new:
        if entry.supersedes != old.id:
            raise Conflict("This client_id was already used for a different entry. Make a "
                           "new client_id for the correction.", slug="client-id-reused",
                           entry_id=str(entry.id))
        audit.record(ctx, "entry.resend", child_id=entry.child_id, object_type="entry",
                     object_id=entry.id)
        ctx.db.commit()
        return entries_out(ctx.db, [entry])[0], False
    if old.status != "active":
        raise Conflict(f"This entry is {old.status}, so it cannot be corrected.",
                       slug="entry-not-active", entry_id=str(old.id))
    entry.supersedes, entry.correction_reason = old.id, data.reason
    try:
        with ctx.db.begin_nested():
            ctx.db.add(entry)
            ctx.db.flush()
    except IntegrityError:
        # Another correction of it (or a copy of this one) was stored a moment ago.
        ctx.db.rollback()
        raise Conflict("This entry was corrected a moment ago; read it again.",
                       slug="entry-not-active", entry_id=str(old.id)) from None
    # Conditional, so it only supersedes an entry still active (not retracted meanwhile).
    changed = ctx.db.exec(update(VoiceEntry)
                          .where(VoiceEntry.id == old.id, VoiceEntry.status == "active")
                          .values(status="superseded", superseded_by=entry.id,
                                  superseded_at=entry.received_at)).rowcount
    if not changed:
        ctx.db.rollback()
        raise Conflict("This entry is no longer active, so it cannot be corrected.",
                       slug="entry-not-active", entry_id=str(old.id))
    if signals:
        safeguarding.raise_alert(ctx, settings, entry, signals)
    audit.record_many(ctx, [("entry.create", entry.child_id, "entry", entry.id),
                            ("entry.correct", old.child_id, "entry", old.id)])
    ctx.db.commit()
    return entry_out(entry), True


def list_session_entries(ctx: Context, session_id: uuid.UUID, limit: int,
                         cursor: str | None) -> dict:
    """A session's entries in the order the child made them (captured_at), whatever order
    they arrived in; retracted ones included, marked."""
    access.require_staff(ctx.actor)
    session = access.session_for(ctx, session_id, Need.read)
    page = paginate(ctx.db, select(VoiceEntry).where(VoiceEntry.session_id == session.id),
                    sort_col=VoiceEntry.captured_at, id_col=VoiceEntry.id, limit=limit,
                    cursor=cursor)
    page["items"] = entries_out(ctx.db, page["items"])
    audit.record(ctx, "entry.list", child_id=session.child_id, object_type="session",
                 object_id=session.id)
    ctx.db.commit()
    return page


def list_entries(ctx: Context, child_id: uuid.UUID, *, kind: str | None, topic: str | None,
                 source: str | None, since: datetime | None, until: datetime | None,
                 limit: int, cursor: str | None) -> dict:
    child = access.child_for(ctx, child_id, Need.read)
    stmt = select(VoiceEntry).where(VoiceEntry.child_id == child.id)
    if kind:
        stmt = stmt.where(VoiceEntry.kind == kind)
    if topic:
        stmt = stmt.where(VoiceEntry.topic == topic)
    if source:
        stmt = stmt.where(VoiceEntry.source == source)
    if since:
        stmt = stmt.where(VoiceEntry.captured_at >= since)
    if until:
        stmt = stmt.where(VoiceEntry.captured_at < until)
    page = paginate(ctx.db, stmt, sort_col=VoiceEntry.captured_at, id_col=VoiceEntry.id,
                    limit=limit, cursor=cursor, descending=True)
    page["items"] = entries_out(ctx.db, page["items"])
    audit.record(ctx, "entry.list", child_id=child.id, object_type="child", object_id=child.id)
    ctx.db.commit()
    return page


def _entry_for(ctx: Context, entry_id: uuid.UUID, need: Need) -> VoiceEntry:
    return access.record_for(ctx, VoiceEntry, entry_id, need, ENTRY_NOT_FOUND)


def get_entry(ctx: Context, entry_id: uuid.UUID) -> EntryOut:
    entry = _entry_for(ctx, entry_id, Need.read)
    shown = entries_out(ctx.db, [entry])[0]
    audit.record(ctx, "entry.read", child_id=entry.child_id, object_type="entry",
                 object_id=entry.id)
    ctx.db.commit()
    return shown


def set_other_people(ctx: Context, entry_id: uuid.UUID, data: OtherPeopleUpdate) -> EntryOut:
    """Record (or correct) that other people appear or are heard in an entry. Any change
    takes back an earlier clearance for family export: it cleared something else."""
    entry = _entry_for(ctx, entry_id, Need.write)
    present, who = other_people_fields(data.other_people)
    if (present, who) != (entry.other_people, list(entry.other_people_who)):
        entry.other_people, entry.other_people_who = present, who
        entry.family_cleared_at = entry.family_cleared_by = None
        entry.family_clearance_reason = None
        ctx.db.add(entry)
    audit.record(ctx, "entry.other_people", child_id=entry.child_id, object_type="entry",
                 object_id=entry.id)
    ctx.db.commit()
    return entries_out(ctx.db, [entry])[0]


def clear_for_family(ctx: Context, entry_id: uuid.UUID, data: FamilyClearance) -> EntryOut:
    """The allocated worker clears an entry with other people in it for family-facing
    exports (e.g. the other person agreed, or cannot be identified)."""
    entry = _entry_for(ctx, entry_id, Need.write)
    if not entry.other_people:
        raise Conflict("No other people are recorded in this entry; there is nothing to "
                       "clear.", slug="nothing-to-clear")
    entry.family_cleared_at = utcnow()
    entry.family_cleared_by = ctx.user.id
    entry.family_clearance_reason = data.reason
    ctx.db.add(entry)
    audit.record(ctx, "entry.family_clear", child_id=entry.child_id, object_type="entry",
                 object_id=entry.id)
    ctx.db.commit()
    return entries_out(ctx.db, [entry])[0]


def reissue_capture_token(ctx: Context, session_id: uuid.UUID) -> SessionOut:
    """A new capture token for an open session (the tablet was restarted and lost it), for
    the worker who holds the child; the old token stops working at once. 409 once the
    session has ended or expired."""
    session = access.session_for(ctx, session_id, Need.write)
    if ctx.actor.capture_session is not None:
        raise Forbidden("Only the worker can issue a new capture token, with their own "
                        "sign-in.", slug="capture-token-scope")
    status = session_status(session)
    if status != "open" or session.token_hash is None:
        why = ("it was started offline on a tablet and has no capture token"
               if status == "open" else f"it has {status}")
        raise Conflict(f"This session cannot have a new capture token: {why}. Open a new "
                       "session instead.", slug="session-not-open")
    token, token_hash = new_capture_token()
    session.token_hash, session.token_issued_by = token_hash, ctx.user.id
    session.token_generation = ctx.user.capture_generation
    ctx.db.add(session)
    audit.record(ctx, "session.capture_token", child_id=session.child_id,
                 object_type="session", object_id=session.id)
    ctx.db.commit()
    return session_out(ctx.db, session, token)
