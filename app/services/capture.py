"""Capture sessions and voice entries: what the child said, stored once, as it was."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Context
from app.core.errors import Conflict, Forbidden, Invalid, Unauthorized
from app.core.pagination import paginate
from app.core.security import hash_capture_token, new_capture_token
from app.models.board import BoardVersion
from app.models.capture import (CaptureSession, EntryIn, EntryOut, FamilyClearance, MatEntryIn,
                                OtherPeopleUpdate, SessionBoardsOut, SessionCreate, SessionOut,
                                SymbolsEntryIn, VoiceEntry, other_people_fields)
from app.models.child import Child
from app.services import access, audit, consent
from app.services.boards import library as boards
from app.services.media import records as media
from app.services.safeguarding import alerts as safeguarding
from app.services.access import Need

ENTRY_NOT_FOUND = "No entry with this id is visible to you."


# --- sessions --------------------------------------------------------------------------

def session_status(session: CaptureSession, at: datetime | None = None) -> str:
    if session.ended_at is not None:
        return "ended"
    return "expired" if session.expires_at <= (at or utcnow()) else "open"


def session_out(db: Session, session: CaptureSession, token: str | None = None) -> SessionOut:
    return SessionOut(id=session.id, client_id=session.client_id, device_id=session.device_id,
                      child_id=session.child_id, worker_id=session.worker_id,
                      setting=session.setting, purpose=session.purpose, device=session.device,
                      status=session_status(session), started_at=session.started_at,
                      ended_at=session.ended_at, expires_at=session.expires_at,
                      boards=boards.session_boards(db, session.boards), capture_token=token)


def _start_session(ctx: Context, settings: Settings, child_id: uuid.UUID, *, setting: str,
                   purpose: str | None, board_ids: list[uuid.UUID], started_at: datetime,
                   **fields: Any) -> CaptureSession:
    """The one way a session comes to be, online or offline; the caller has checked that
    the worker may write to the child, and audits and commits."""
    pinned = boards.boards_for_session(ctx, child_id, board_ids)
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
                             started_at=utcnow(), device=data.device, token_hash=token_hash)
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


def close_session(ctx: Context, session: CaptureSession, ended_at: datetime) -> bool:
    """End a session unless it has ended already (then the first end stands). Returns whether
    this call ended it. One conditional UPDATE, so two concurrent ends cannot both win."""
    if ended_at < session.started_at:
        raise Invalid("ended_at is before the session started", field=["body", "ended_at"])
    changed = ctx.db.exec(update(CaptureSession)
                          .where(CaptureSession.id == session.id,
                                 CaptureSession.ended_at.is_(None))
                          .values(ended_at=ended_at)).rowcount
    ctx.db.refresh(session)
    return bool(changed)


def end_session(ctx: Context, session_id: uuid.UUID) -> SessionOut:
    access.require_staff(ctx.actor)
    session = access.session_for(ctx, session_id, Need.write)
    if session.ended_at is None:
        close_session(ctx, session, max(utcnow(), session.started_at))
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
                            boards=boards.session_boards(ctx.db, session.boards))


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
                    retracted_by=entry.retracted_by,
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
                                    boards.get_version(db, data.board_id, data.board_version))
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
            self.versions[(board_id, number)] = boards.get_version(db, board_id, number)
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
    try:
        allowed_by = consent.consent_for_capture(
            ctx.db, session.child_id, data.kind, data.captured_at,
            known=lookups.live_consents(ctx.db, session.child_id) if lookups else None)
    except Forbidden:
        if not signals:
            raise
        allowed_by = None  # kept for safeguarding; no consent, so no use beyond it
    has_others, others = other_people_fields(data.other_people)
    entry = VoiceEntry(client_id=data.client_id, child_id=session.child_id,
                       session_id=session.id, kind=data.kind, source=data.source,
                       captured_at=data.captured_at, received_at=received_at or utcnow(),
                       prompt=data.prompt, topic=data.topic, note=data.note,
                       consent_id=allowed_by.id if allowed_by else None, board_id=board_id,
                       board_version=board_version, content=content,
                       created_by=ctx.actor.user.id if ctx.actor.user else None,
                       fingerprint=print_, other_people=has_others, other_people_who=others,
                       clock_offset_ms=clock_offset_ms)
    return entry, True, signals


def store_entry(ctx: Context, settings: Settings, session: CaptureSession, data: EntryIn,
                **kw: Any) -> tuple[VoiceEntry, bool, Signals]:
    """prepare_entry, then add a new entry (flushed, in a savepoint); a concurrent request
    that stored the same client_id first makes this a resend. Neither raises the alert,
    audits nor commits: the caller does, last."""
    entry, new, signals = prepare_entry(ctx, settings, session, data, **kw)
    if not new:
        return entry, False, []
    try:
        with ctx.db.begin_nested():
            ctx.db.add(entry)
    except IntegrityError:
        # Another request stored the same client_id a moment ago.
        existing = _stored(ctx.db, data.client_id)
        if existing is None:
            raise
        return _same_or_conflict(existing, session.id, entry.fingerprint), False, []
    return entry, True, signals


def retract_entry(ctx: Context, entry: VoiceEntry, retracted_at: datetime) -> bool:
    """A change of heart: the entry is kept, marked retracted with who and when, and leaves
    the plan. Returns whether this call retracted it (False: it already was). Neither
    audits nor commits."""
    access.child_for(ctx, entry.child_id, Need.write)
    if retracted_at < entry.captured_at:
        raise Invalid("retracted_at is before the entry was captured",
                      field=["body", "retracted_at"])
    # Conditional, so two concurrent retractions cannot both write who and when.
    changed = ctx.db.exec(update(VoiceEntry)
                          .where(VoiceEntry.id == entry.id, VoiceEntry.status == "active")
                          .values(status="retracted", retracted_at=retracted_at,
                                  retracted_by=ctx.user.id)).rowcount
    ctx.db.refresh(entry)
    if changed:
        return True
    if entry.status == "retracted":
        return False
    raise Conflict(f"This entry is {entry.status}, so it cannot be retracted.",
                   slug="entry-not-active", entry_id=str(entry.id))


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
