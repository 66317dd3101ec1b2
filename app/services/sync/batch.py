"""Offline-first sync: a batch from a tablet's queue, each item stored exactly once.

How exactly-once holds without any lock in this process:

- every item carries a `client_id` made on the tablet; sessions, entries and sync receipts
  each have a UNIQUE constraint on it, so the database refuses a second copy however many
  requests race to store it, and the loser reads the winner's row and answers `duplicate`;
- a batch is one transaction with a SAVEPOINT per item: a bad item rolls back only itself,
  and a server killed mid-batch leaves no row of it (the tablet resends the whole batch);
- items are applied in one canonical order (consents, sessions, entries by `captured_at`,
  retracts, session ends), whatever order they were sent in, so overlapping batches take
  row locks in the same order; PostgreSQL may still pick a deadlock victim, and that batch
  is re-run.

The rules for what may be stored are capture's (the same functions the single endpoints
use); this module only sequences items, records receipts and shapes answers.
"""

from __future__ import annotations

import base64
import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlmodel import select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Context
from app.core.errors import Conflict, Forbidden, Invalid, Problem, validation_problem
from app.models.capture import CaptureSession, EntryIn, VoiceEntry
from app.models.common import INT32_MAX
from app.models.consent import Consent
from app.models.sync import (ConsentItem, Device, EntryItemRef, RetractItem, SessionEndItem,
                             SessionItem, SyncBatch, SyncOut, SyncReceipt, SyncResult,
                             SyncStateOut)
from app.services import access, audit, capture, consent as consents
from app.services.media import records as media, uploads
from app.services.safeguarding import alerts as safeguarding

log = logging.getLogger("childvoice.sync")

_ENTRY = TypeAdapter(EntryIn)
_REF_FIELDS = ("type", "session_client_id", "session_id")
# Canonical apply order: what an item depends on comes first.
_RANK = {"consent": 0, "session": 1, "entry": 2, "retract": 3, "session_end": 4}
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
# The service itself failing (the database gone, locked, or picking this batch as a
# deadlock victim): the whole request fails, and the tablet resends it.
_SERVICE_FAILURES = (OperationalError, InterfaceError)
# What both databases hold in an integer column.
_INT_MAX = 2**31 - 1
_ATTEMPTS = 3
UPLOADS_PATH = "/api/v1/uploads"


def offline_until(settings: Settings, device: Device) -> datetime:
    return device.last_seen_at + timedelta(hours=settings.device_offline_hours)


# --- parsing: one item at a time, so one malformed item never fails the batch ----------

@dataclass
class _Item:
    index: int
    client_id: str | None
    type: str | None
    # ConsentItem | SessionItem | (EntryItemRef, EntryIn) | SessionEndItem | RetractItem
    parsed: Any = None
    problem: Problem | None = None

    @property
    def sort_key(self) -> tuple:
        p = self.parsed
        when = (p.started_at if self.type == "session" else p[1].captured_at
                if self.type == "entry" else p.retracted_at if self.type == "retract"
                else p.given_at if self.type == "consent" else p.ended_at)
        cid = p.client_id if self.type != "entry" else p[1].client_id
        return _RANK[self.type], when, str(cid)


def _unstorable(raw: Any, where: tuple) -> Invalid | None:
    """What no column of either database can hold (a NUL in text, an integer past 32 bits,
    a float that is not a number), found before any model or query sees it. Names where,
    never the value: it may be a child's words."""
    stack = [(raw, list(where))]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return Invalid("Text cannot contain a NUL character (\\u0000); remove it.",
                               field=loc)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -_INT_MAX - 1 <= value <= _INT_MAX:
                return Invalid(f"This number is out of range: at most {_INT_MAX}.", field=loc)
        elif isinstance(value, float):
            if not math.isfinite(value):
                return Invalid("This number is not finite.", field=loc)
        elif isinstance(value, dict):
            for key, inner in value.items():
                if "\x00" in key:
                    return Invalid("A field name cannot contain a NUL character.", field=loc)
                stack.append((inner, [*loc, key]))
        elif isinstance(value, list):
            stack.extend((inner, [*loc, i]) for i, inner in enumerate(value))
    return None


def _implausible_time(model: BaseModel, where: tuple) -> Invalid | None:
    """A date no visit happened on (before 2000, after 2099): the tablet's clock is wrong.
    (A date ahead of the server's clock is judged with the clock tolerance, later.)"""
    for name, value in model:
        if isinstance(value, datetime) and not capture.SANE_FROM <= value < capture.SANE_UNTIL:
            return capture.implausible(name, value, [*where, name])
    return None


def _echo(client_id: Any) -> str | None:
    """The item's client_id as sent, when it is something a tablet could have made."""
    if isinstance(client_id, str) and len(client_id) <= 100 and "\x00" not in client_id:
        return client_id
    return None


def _parse(index: int, raw: Any) -> _Item:
    where = ("body", "items", index)
    if not isinstance(raw, dict):
        return _Item(index, None, None, problem=Invalid("Each item must be a JSON object.",
                                                         field=list(where)))
    kind = raw.get("type")
    item = _Item(index, _echo(raw.get("client_id")), _echo(kind))
    item.problem = _unstorable(raw, where)
    if item.problem is not None:
        return item
    try:
        if item.type == "session":
            item.parsed = SessionItem.model_validate(raw)
            models = [item.parsed]
        elif item.type == "entry":
            ref = EntryItemRef.model_validate(raw)
            item.parsed = (ref, _ENTRY.validate_python(
                {k: v for k, v in raw.items() if k not in _REF_FIELDS}))
            models = [item.parsed[1]]
        elif item.type == "session_end":
            item.parsed = SessionEndItem.model_validate(raw)
            models = [item.parsed]
        elif item.type == "retract":
            item.parsed = RetractItem.model_validate(raw)
            models = [item.parsed]
        elif item.type == "consent":
            item.parsed = ConsentItem.model_validate(raw)
            models = [item.parsed]
        else:
            item.problem = Invalid("type must be one of: consent, session, entry, "
                                   "session_end, retract", field=[*where, "type"])
            return item
    except ValidationError as exc:
        item.problem = validation_problem(exc.errors(), where)
        return item
    for model in models:
        item.problem = item.problem or _implausible_time(model, where)
    return item


# --- one batch ---------------------------------------------------------------------

def _retry_later(detail: str, slug: str, title: str) -> Conflict:
    return Conflict(detail, slug=slug, title=title, retry=True)


def _reused(client_id: uuid.UUID) -> Conflict:
    return Conflict("This client_id was already used for a different item. Make a new "
                    "client_id for each new item; resend only exact copies.",
                    slug="client-id-reused", client_id=str(client_id))


@dataclass
class _Batch:
    ctx: Context
    settings: Settings
    device: Device
    received_at: datetime
    offset_ms: int | None
    lease_ends: datetime
    sessions: dict[uuid.UUID, CaptureSession] = field(default_factory=dict)   # by client_id
    entries: dict[uuid.UUID, VoiceEntry] = field(default_factory=dict)        # by client_id
    receipts: dict[uuid.UUID, tuple[str, uuid.UUID]] = field(default_factory=dict)
    writable: dict[tuple, CaptureSession | Problem] = field(default_factory=dict)
    rejected_sessions: set[uuid.UUID] = field(default_factory=set)
    rejected_entries: set[uuid.UUID] = field(default_factory=set)
    events: list[tuple[str, uuid.UUID, str, uuid.UUID]] = field(default_factory=list)
    resent_children: set[uuid.UUID] = field(default_factory=set)
    lookups: capture.Lookups = field(default_factory=capture.Lookups)
    # Entries with a safeguarding signal: an alert each, raised at the end of the batch.
    alerts: list[tuple[VoiceEntry, list]] = field(default_factory=list)

    @property
    def db(self):  # noqa: ANN201
        return self.ctx.db

    # receipts ---------------------------------------------------------------------

    def put_receipt(self, client_id: uuid.UUID, item_type: str, child_id: uuid.UUID,
                    object_id: uuid.UUID, tablet_at: datetime) -> bool:
        """Record that the server holds this item. False when it already did; 409 when the
        client_id is held for something else."""
        held = self.receipts.get(client_id)
        if held is None:
            receipt = SyncReceipt(client_id=client_id, device_id=self.device.id,
                                  item_type=item_type, child_id=child_id, object_id=object_id,
                                  tablet_at=tablet_at, received_at=self.received_at,
                                  clock_offset_ms=self.offset_ms)
            try:
                with self.db.begin_nested():
                    self.db.add(receipt)
                self.receipts[client_id] = (item_type, object_id)
                return True
            except IntegrityError:
                # Another batch holds it since we looked (or it names another item type).
                row = self.db.exec(select(SyncReceipt).where(
                    SyncReceipt.client_id == client_id)).first()
                if row is None:
                    raise
                held = self.receipts[client_id] = (row.item_type, row.object_id)
        if held != (item_type, object_id):
            raise _reused(client_id)
        return False

    # sessions ---------------------------------------------------------------------

    def writable_session(self, ref: Any) -> CaptureSession:
        """The session an item names, if the worker may write to its child (cached per
        batch, refusals too)."""
        key = ("client", ref.session_client_id) if ref.session_client_id else ("id", ref.session_id)
        cached = self.writable.get(key)
        if isinstance(cached, Problem):
            raise cached
        if cached is not None:
            return cached
        try:
            if ref.session_client_id:
                session = self.sessions.get(ref.session_client_id) or self.db.exec(
                    select(CaptureSession).where(
                        CaptureSession.client_id == ref.session_client_id)).first()
                if session is None:
                    if ref.session_client_id in self.rejected_sessions:
                        raise Conflict("This item's session was rejected in this batch, so "
                                       "the item cannot be stored; see that session's "
                                       "problem.", slug="session-rejected",
                                       title="Session rejected")
                    raise _retry_later("No session with this session_client_id has reached "
                                       "the server yet. Send its `session` item (in the same "
                                       "batch or before) and keep this item queued.",
                                       "session-unknown", "Session not received yet")
                session = access.session_for(self.ctx, session.id, access.Need.write)
            else:
                session = access.session_for(self.ctx, ref.session_id, access.Need.write)
        except Problem as problem:
            self.writable[key] = problem
            raise
        self.writable[key] = session
        return session

    def session_item(self, item: SessionItem) -> SyncResult:
        existing = self.sessions.get(item.client_id)
        if existing is None:
            corrected = capture.server_view(self.settings, item.started_at, "started_at",
                                            received_at=self.received_at,
                                            clock_offset_ms=self.offset_ms)
            if corrected > self.lease_ends + capture.tolerance(self.settings):
                raise Forbidden(
                    f"This session started after the device's offline window ended "
                    f"({self.lease_ends.isoformat()}): a tablet may start sessions offline "
                    f"for {self.settings.device_offline_hours} hours after it last reached "
                    "the server.", slug="offline-window-exceeded",
                    title="Offline window exceeded")
            try:
                with self.db.begin_nested():
                    session = capture.start_offline_session(
                        self.ctx, self.settings, client_id=item.client_id,
                        child_id=item.child_id, setting=item.setting, purpose=item.purpose,
                        board_ids=item.board_ids, started_at=item.started_at,
                        device_id=self.device.id, device_name=self.device.name,
                        received_at=self.received_at, clock_offset_ms=self.offset_ms)
                    self.put_receipt(item.client_id, "session", session.child_id, session.id,
                                     item.started_at)
            except IntegrityError:
                existing = self.db.exec(select(CaptureSession).where(
                    CaptureSession.client_id == item.client_id)).first()
                if existing is None:
                    raise _reused(item.client_id) from None
            else:
                self.sessions[item.client_id] = session
                self.events.append(("session.open", session.child_id, "session", session.id))
                return SyncResult(client_id=str(item.client_id), type="session",
                                  status="created",
                                  session=capture.session_out(self.db, session))
        # Held already: the same session, answered as stored, if the worker may still write.
        access.child_for(self.ctx, existing.child_id, access.Need.write)
        if (existing.child_id, existing.started_at, existing.worker_id) != \
                (item.child_id, item.started_at, self.ctx.user.id):
            raise _reused(item.client_id)
        self.sessions[item.client_id] = existing
        self.put_receipt(item.client_id, "session", existing.child_id, existing.id,
                         item.started_at)
        self.resent_children.add(existing.child_id)
        return SyncResult(client_id=str(item.client_id), type="session", status="duplicate",
                          session=capture.session_out(self.db, existing))

    def session_end_item(self, item: SessionEndItem) -> SyncResult:
        session = self.writable_session(item)
        ended = False
        if self.receipts.get(item.client_id) != ("session_end", session.id):
            capture.server_view(self.settings, item.ended_at, "ended_at",
                                received_at=self.received_at, clock_offset_ms=self.offset_ms)
            ended = capture.close_session(self.ctx, self.settings, session, item.ended_at)
            self.put_receipt(item.client_id, "session_end", session.child_id, session.id,
                             item.ended_at)
        if ended:
            self.events.append(("session.end", session.child_id, "session", session.id))
        else:
            self.resent_children.add(session.child_id)
        return SyncResult(client_id=str(item.client_id), type="session_end",
                          status="created" if ended else "duplicate",
                          session=capture.session_out(self.db, session))

    # consents ---------------------------------------------------------------------

    def consent_item(self, item: ConsentItem) -> SyncResult:
        """A consent recorded on the tablet, stored once: its receipt is written in the same
        savepoint, so of two concurrent copies one stores it and the other answers it."""
        if item.client_id not in self.receipts:
            given = capture.server_view(self.settings, item.given_at, "given_at",
                                        received_at=self.received_at,
                                        clock_offset_ms=self.offset_ms)
            try:
                with self.db.begin_nested():
                    consent = consents.new_consent(self.ctx, item.child_id, item,
                                                   item.valid_from or given)
                    self.db.add(SyncReceipt(
                        client_id=item.client_id, device_id=self.device.id,
                        item_type="consent", child_id=consent.child_id, object_id=consent.id,
                        tablet_at=item.given_at, received_at=self.received_at,
                        clock_offset_ms=self.offset_ms))
                    self.db.flush()
            except IntegrityError:
                row = self.db.exec(select(SyncReceipt).where(
                    SyncReceipt.client_id == item.client_id)).first()
                if row is None:
                    raise
                self.receipts[item.client_id] = (row.item_type, row.object_id)
            else:
                self.receipts[item.client_id] = ("consent", consent.id)
                # Entries of this batch are decided with it.
                self.lookups.consents.pop(consent.child_id, None)
                self.events.append(("consent.create", consent.child_id, "consent",
                                    consent.id))
                return SyncResult(client_id=str(item.client_id), type="consent",
                                  status="created", consent=consents.consent_out(consent))
        kind, object_id = self.receipts[item.client_id]
        stored = self.db.get(Consent, object_id) if kind == "consent" else None
        if stored is None:
            raise _reused(item.client_id)
        access.child_for(self.ctx, stored.child_id, access.Need.write)
        if (stored.child_id, stored.given_by, stored.scopes, stored.child_assent) != \
                (item.child_id, item.given_by, sorted({s.value for s in item.scopes}),
                 item.child_assent):
            raise _reused(item.client_id)
        self.resent_children.add(stored.child_id)
        return SyncResult(client_id=str(item.client_id), type="consent", status="duplicate",
                          consent=consents.consent_out(stored))

    # entries ----------------------------------------------------------------------

    def entry_item(self, ref: EntryItemRef, data: Any) -> SyncResult:
        session = self.writable_session(ref)
        entry, created, signals = capture.store_entry(self.ctx, self.settings, session, data,
                                             stored=self.entries.get(data.client_id),
                                             received_at=self.received_at,
                                             clock_offset_ms=self.offset_ms,
                                             lookups=self.lookups)
        self.entries[data.client_id] = entry
        self.put_receipt(data.client_id, "entry", entry.child_id, entry.id, data.captured_at)
        if created:
            self.created_entry(entry, signals)
        else:
            self.resent_children.add(entry.child_id)
        return SyncResult(client_id=str(data.client_id), type="entry",
                          status="created" if created else "duplicate",
                          entry=capture.entry_out(entry))

    def entries_in_bulk(self, items: list[_Item], results: list) -> None:
        """Every entry item checked by the same rules as one at a time, then the new ones
        inserted together (in captured_at order) in one savepoint. If a concurrent request
        stored one of them since this batch looked, the savepoint is rolled back and the
        entries are done again one at a time, each in its own savepoint."""
        pending: list[tuple[_Item, VoiceEntry, capture.Signals]] = []
        for item in items:
            ref, data = item.parsed
            try:
                session = self.writable_session(ref)
                entry, new, signals = capture.prepare_entry(
                    self.ctx, self.settings, session, data,
                    stored=self.entries.get(data.client_id),
                    received_at=self.received_at, clock_offset_ms=self.offset_ms,
                    lookups=self.lookups)
                if not new:
                    self.put_receipt(data.client_id, "entry", entry.child_id, entry.id,
                                     data.captured_at)
                    self.resent_children.add(entry.child_id)
                elif data.client_id in self.receipts:
                    raise _reused(data.client_id)
                else:
                    pending.append((item, entry, signals))
                    # A copy later in this batch is a resend of this one.
                    self.entries[data.client_id] = entry
                    self.receipts[data.client_id] = ("entry", entry.id)
                results[item.index] = SyncResult(
                    client_id=str(data.client_id), type="entry",
                    status="created" if new else "duplicate", entry=capture.entry_out(entry))
            except Problem as problem:
                results[item.index] = self.rejected(item, problem)
            except _SERVICE_FAILURES:
                raise
            except Exception as exc:
                # Outside a savepoint, so on PostgreSQL the transaction may be lost:
                # the batch is done again with one savepoint per item.
                raise _OneByOne from exc
        if not pending:
            return
        receipts = [SyncReceipt(client_id=e.client_id, device_id=self.device.id,
                                item_type="entry", child_id=e.child_id, object_id=e.id,
                                tablet_at=e.captured_at, received_at=self.received_at,
                                clock_offset_ms=self.offset_ms) for _, e, _ in pending]
        try:
            with self.db.begin_nested():
                self.db.add_all([e for _, e, _ in pending])
                self.db.flush()
                self.db.add_all(receipts)
        except _SERVICE_FAILURES:
            raise
        except DBAPIError:
            # A concurrent copy stored one of them since this batch looked (or one entry
            # is one the database refuses): the entries are done one at a time.
            log.info("sync batch's entries could not be stored together; storing them one "
                     "at a time")
            for _, entry, _ in pending:
                self.entries.pop(entry.client_id, None)
                self.receipts.pop(entry.client_id, None)
            for item in items:
                results[item.index] = self.apply(item)
            return
        for _, entry, signals in pending:
            self.created_entry(entry, signals)

    def created_entry(self, entry: VoiceEntry, signals: capture.Signals) -> None:
        self.events.append(("entry.create", entry.child_id, "entry", entry.id))
        if signals:
            self.alerts.append((entry, signals))

    def retract_item(self, item: RetractItem) -> SyncResult:
        entry = self.entries.get(item.entry_client_id) or self.db.exec(
            select(VoiceEntry).where(VoiceEntry.client_id == item.entry_client_id)).first()
        if entry is not None:
            self.entries[item.entry_client_id] = entry
        if entry is None and item.entry_client_id in self.rejected_entries:
            raise Conflict("The entry this retracts was rejected in this batch, so there is "
                           "nothing to retract.", slug="entry-rejected", title="Entry rejected")
        if entry is None:
            raise _retry_later("No entry with this entry_client_id has reached the server "
                               "yet. Send the entry first and keep this retract queued.",
                               "entry-unknown", "Entry not received yet")
        retracted = False
        if self.receipts.get(item.client_id) == ("retract", entry.id):
            access.child_for(self.ctx, entry.child_id, access.Need.write)
        else:
            capture.server_view(self.settings, item.retracted_at, "retracted_at",
                                received_at=self.received_at, clock_offset_ms=self.offset_ms)
            retracted = capture.retract_entry(self.ctx, entry, item.retracted_at, item.reason)
            self.put_receipt(item.client_id, "retract", entry.child_id, entry.id,
                             item.retracted_at)
        if retracted:
            self.events.append(("entry.retract", entry.child_id, "entry", entry.id))
        else:
            self.resent_children.add(entry.child_id)
        return SyncResult(client_id=str(item.client_id), type="retract",
                          status="created" if retracted else "duplicate",
                          entry=capture.entry_out(entry))

    # the batch ----------------------------------------------------------------------

    def prefetch(self, items: list[_Item]) -> None:
        """What the server already holds for this batch, in three queries, so a resent
        batch costs little more than reading it."""
        ids: set[uuid.UUID] = set()
        sessions: set[uuid.UUID] = set()
        entries: set[uuid.UUID] = set()
        for item in items:
            p = item.parsed
            if item.type == "session":
                ids.add(p.client_id)
                sessions.add(p.client_id)
            elif item.type == "entry":
                ids.add(p[1].client_id)
                entries.add(p[1].client_id)
                if p[0].session_client_id:
                    sessions.add(p[0].session_client_id)
            elif item.type == "retract":
                ids.add(p.client_id)
                entries.add(p.entry_client_id)
            elif item.type == "session_end":
                ids.add(p.client_id)
                if p.session_client_id:
                    sessions.add(p.session_client_id)
            elif item.type == "consent":
                ids.add(p.client_id)
        if ids:
            for cid, kind, oid in self.db.exec(select(
                    SyncReceipt.client_id, SyncReceipt.item_type, SyncReceipt.object_id)
                    .where(SyncReceipt.client_id.in_(ids))):
                self.receipts[cid] = (kind, oid)
        if sessions:
            for s in self.db.exec(select(CaptureSession)
                                  .where(CaptureSession.client_id.in_(sessions))):
                self.sessions[s.client_id] = s
        if entries:
            for e in self.db.exec(select(VoiceEntry).where(VoiceEntry.client_id.in_(entries))):
                self.entries[e.client_id] = e

    def apply(self, item: _Item) -> SyncResult:
        handlers: dict[str, Callable[[], SyncResult]] = {
            "session": lambda: self.session_item(item.parsed),
            "entry": lambda: self.entry_item(*item.parsed),
            "session_end": lambda: self.session_end_item(item.parsed),
            "retract": lambda: self.retract_item(item.parsed),
            "consent": lambda: self.consent_item(item.parsed),
        }
        try:
            with self.db.begin_nested():
                return handlers[item.type]()
        except Problem as problem:
            return self.rejected(item, problem)
        except IntegrityError:
            # A unique key other than the item's own was hit: its client_id is taken.
            self.forget(item)
            return self.rejected(item, _reused(item.client_id))
        except _SERVICE_FAILURES:
            raise
        except Exception as exc:
            # No rule names it, so it is this item's and only this item's: its savepoint
            # is rolled back. The type alone is logged: the item may hold a child's words.
            log.warning("sync item (%s) could not be stored: %s", item.type,
                        type(exc).__name__)
            self.forget(item)
            return self.rejected(item, Invalid(
                "The server could not store this item as sent (a value it cannot hold). "
                "Check the item's fields; it will not be stored by sending it again.",
                slug="unstorable", title="Item cannot be stored"))

    def forget(self, item: _Item) -> None:
        """Drop what this batch noted about an item whose savepoint was rolled back."""
        cid = item.parsed[1].client_id if item.type == "entry" else item.parsed.client_id
        self.receipts.pop(cid, None)
        self.sessions.pop(cid, None)
        self.entries.pop(cid, None)

    def rejected(self, item: _Item, problem: Problem) -> SyncResult:
        if item.type == "session":
            self.rejected_sessions.add(item.parsed.client_id)
        elif item.type == "entry" and not problem.extra.get("retry"):
            self.rejected_entries.add(item.parsed[1].client_id)
        return _rejected(item, problem)


class _OneByOne(Exception):
    """An entry met an error no rule names outside a savepoint: do the batch again, every
    item in its own savepoint, so that error is that item's rejection alone."""


def _rejected(item: _Item, problem: Problem) -> SyncResult:
    return SyncResult(client_id=item.client_id, type=item.type, status="rejected",
                      problem=problem.document())


def _offset_ms(received_at: datetime, sent_at: datetime | None) -> int | None:
    """Server clock minus the tablet's; unknown when the tablet's clock is not even a date
    a visit could have (its items are then judged on their own times)."""
    if sent_at is None or not capture.SANE_FROM <= sent_at < capture.SANE_UNTIL:
        return None
    return round((received_at - sent_at).total_seconds() * 1000)


def _apply_once(ctx: Context, settings: Settings, batch: SyncBatch, device_key: str | None,
                items: list[_Item], received_at: datetime, one_by_one: bool) -> SyncOut:
    device = access.tablet_device(ctx, batch.device_id, device_key)
    offset = _offset_ms(received_at, batch.sent_at)
    state = _Batch(ctx, settings, device, received_at, offset,
                   lease_ends=offline_until(settings, device))
    device.last_seen_at = max(device.last_seen_at, received_at)
    ctx.db.add(device)
    good = [i for i in items if i.problem is None]
    state.prefetch(good)
    results: list[SyncResult | None] = [None] * len(items)
    for item in items:
        if item.problem is not None:
            results[item.index] = _rejected(item, item.problem)
    ordered = sorted(good, key=lambda i: i.sort_key)
    for item in (i for i in ordered if i.type in ("consent", "session")):
        results[item.index] = state.apply(item)
    entries = [i for i in ordered if i.type == "entry"]
    if one_by_one:
        for item in entries:
            results[item.index] = state.apply(item)
    else:
        state.entries_in_bulk(entries, results)
    for item in (i for i in ordered if i.type in ("retract", "session_end")):
        results[item.index] = state.apply(item)
    # A stored entry is answered with the media it carries (new ones carry none yet).
    shown = [(i, state.entries[r.entry.client_id]) for i, r in enumerate(results)
             if r.entry is not None and (r.status == "duplicate" or r.type == "retract")
             and r.entry.client_id in state.entries]
    if shown:
        attached = media.media_for_entries(ctx.db, [entry for _, entry in shown])
        for i, entry in shown:
            results[i].entry = capture.entry_out(entry, attached.get(entry.id))
    # Alerts and audit last, just before commit, so the audit chain's lock is held briefly
    # (raising an alert audits it too).
    for entry, signals in state.alerts:
        safeguarding.raise_alert(ctx, settings, entry, signals)
    audit.record_many(ctx, state.events + [
        ("sync.resend", child_id, "device", device.id)
        for child_id in sorted(state.resent_children, key=str)])
    ctx.db.commit()
    return SyncOut(device_id=device.id, received_at=received_at, clock_offset_ms=offset,
                   offline_until=offline_until(settings, device), results=results)


def apply_batch(ctx: Context, settings: Settings, batch: SyncBatch,
                device_key: str | None) -> SyncOut:
    """Store what a batch carries, each item once, and answer each in the order sent."""
    if len(batch.items) > settings.sync_batch_max_items:
        raise Invalid(f"A batch carries at most {settings.sync_batch_max_items} items; this "
                      f"one has {len(batch.items)}. Send the queue in smaller batches.",
                      field=["body", "items"], slug="batch-too-large",
                      title="Batch too large", max_items=settings.sync_batch_max_items)
    items = [_parse(i, raw) for i, raw in enumerate(batch.items)]
    received_at = utcnow()
    one_by_one = False
    attempt = 1
    while True:
        try:
            return _apply_once(ctx, settings, batch, device_key, items, received_at,
                               one_by_one)
        except _OneByOne:
            ctx.db.rollback()
            one_by_one = True
        except DBAPIError as exc:
            ctx.db.rollback()
            if attempt == _ATTEMPTS or \
                    getattr(exc.orig, "sqlstate", None) not in _RETRYABLE_SQLSTATES:
                raise
            log.info("sync batch picked as a deadlock victim; re-running (attempt %d)", attempt)
            attempt += 1


# --- what the tablet still owes ---------------------------------------------------------

def _encode_cursor(receipt_id: int) -> str:
    return base64.urlsafe_b64encode(f"r{receipt_id}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not raw.startswith("r"):
            raise ValueError
        receipt_id = int(raw[1:])
        if not 0 <= receipt_id <= INT32_MAX:
            raise ValueError
        return receipt_id
    except ValueError:
        raise Invalid("cursor is not one this server gave out; start again without it",
                      field=["query", "cursor"]) from None


def sync_state(ctx: Context, settings: Settings, device_id: uuid.UUID, device_key: str | None,
               cursor: str | None, limit: int) -> SyncStateOut:
    """Which of this device's items the server holds (client_ids, oldest first, after
    `cursor`). A receipt is written in the same transaction as what it stands for, so a
    client_id listed here is held for good; one committed late by a concurrent batch may be
    missed by a cursor already past it, and a resend of it is only answered `duplicate`."""
    after = _decode_cursor(cursor) if cursor else 0
    device = access.tablet_device(ctx, device_id, device_key)
    now = utcnow()
    rows = list(ctx.db.exec(select(SyncReceipt.id, SyncReceipt.client_id)
                            .where(SyncReceipt.device_id == device.id, SyncReceipt.id > after)
                            .order_by(SyncReceipt.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    device.last_seen_at = max(device.last_seen_at, now)
    ctx.db.add(device)
    audit.record(ctx, "sync.state", object_type="device", object_id=device.id)
    ctx.db.commit()
    return SyncStateOut(device_id=device.id, held=[r.client_id for r in rows],
                        cursor=_encode_cursor(rows[-1].id) if rows else cursor, more=more,
                        incomplete_uploads=uploads.incomplete(ctx, device, UPLOADS_PATH),
                        server_time=now,
                        offline_until=offline_until(settings, device))
