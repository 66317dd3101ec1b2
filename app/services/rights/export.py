"""Subject access export: a zip a family can open, and another AAC system can read.

    index.html          a page written to the child (no script, reads on a phone): what
                        they said, with the pictures they chose, their photos and their
                        recordings playing from the folder; what was kept back; consents;
                        the plan; the files
    entries.json        what the child said, as the API shapes it; withheld items listed
    consents.json       every consent recorded for the child
    plan-versions.json  every published version of My plan
    symbols.obl         the child's symbol choices as Open Board Logging (open-board-log-0.1)
    media/…             the photos (clean copies: no EXIF or GPS) and recordings (the
                        playback copy, AAC in M4A, which every browser plays) of the included
                        entries, named in words: `2026-11-30 photo 1.jpg`
    pictures/…          the symbols as the child saw them (`happy.png`), and the mat's
                        column pictures

It is family-facing: an entry is in it only while the consent it was made under covers
`share_family` (withdrawn: out at once), and an entry with other people in it is listed
but withheld until a worker clears it. An entry that raised a safeguarding alert is left
out altogether (not even listed): handing it to the family could warn the very person
the child was telling us about; the manager decides about it outside the export. The
manager is told everything that was left out and why (`left_out`, served beside the zip),
and the page says "Nothing was kept back" only when nothing was. The statutory record
itself is unchanged.

The data is gathered, and the export audited, inside the request; the zip is then
streamed member by member, so media files never have to sit in memory.
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from sqlmodel import Session, select

from app.core.clock import utcnow
from app.core.context import Context
from app.core.pages import STATIC_DIR, render_text
from app.models.capture import CaptureSession, EntryOut, VoiceEntry
from app.models.child import Child
from app.models.consent import Consent
from app.models.plan import PlanVersion
from app.models.safeguarding import SafeguardingAlert
from app.services import access, audit, consent
from app.services.access import Need
from app.services.capture import entries_out
from app.services.media.records import file_extension
from app.services.plan_page import FileRef, entry_views, long_date, sentences
from app.services.plans import version_view
from app.storage import MediaStore

OBL_FORMAT = "open-board-log-0.1"

WITHHELD_REASONS = {
    "other_people_not_cleared": "Other people appear or are heard in it. A worker can "
                                "check it and clear it for sharing.",
}
# Why an entry is not in the family's export, as the manager is told (never the family).
LEFT_OUT_REASONS = {
    "safeguarding_alert": "It raised a safeguarding alert: it is never given to the family "
                          "in an export; decide about it outside the export.",
    "other_people_not_cleared": "Other people appear or are heard in it and no worker has "
                                "cleared it for sharing (the family's page lists it as kept "
                                "back).",
    "no_share_family_consent": "No current consent covers sharing it with the family.",
    "retracted": "The child took it back.",
    "withdrawn": "Its consent was withdrawn.",
    "erased": "Its media was erased.",
}


@dataclass
class ExportMember:
    """One file in the zip: its bytes, or a function giving them in chunks (media)."""

    name: str
    data: bytes | None = None
    chunks: Callable[[], Iterable[bytes]] | None = None

    def iter_chunks(self) -> Iterable[bytes]:
        return self.chunks() if self.chunks is not None else [self.data or b""]


@dataclass
class ExportBundle:
    filename: str
    members: list[ExportMember]
    left_out: int = 0  # entries not in it (see left_out())


class ExportFiles:
    """The export page's links: each picture or recording becomes a file in the zip, named
    in words (`media/2026-11-30 photo 1.jpg`, `pictures/happy.png`), the same bytes once."""

    def __init__(self, store: MediaStore) -> None:
        self.store = store
        self.members: list[ExportMember] = []
        self._names: dict[str, str] = {}
        self._taken: set[str] = set()
        self._counts: dict[tuple[str, str], int] = {}

    def _name(self, ref: FileRef) -> str:
        extension = file_extension(ref.content_type)
        if ref.kind == "media":
            key = (ref.day or "", ref.label or "file")
            self._counts[key] = self._counts.get(key, 0) + 1
            base = f"media/{key[0]} {key[1]} {self._counts[key]}"
        else:
            words = re.sub(r"[^\w\- ]+", "", ref.label or ref.path or "picture").strip()
            base = f"pictures/{words[:60] or 'picture'}"
        name, n = f"{base}.{extension}", 1
        while name in self._taken:
            n += 1
            name = f"{base} {n}.{extension}"
        self._taken.add(name)
        return name

    def url(self, ref: FileRef) -> str:
        key = ref.path if ref.kind == "static" else ref.sha256
        if key not in self._names:
            if ref.kind == "static":
                name = self._name(ref)
                self.members.append(ExportMember(name, (STATIC_DIR / ref.path).read_bytes()))
            else:
                name = self._name(ref)
                self.members.append(ExportMember(name, chunks=partial(self.store.open_range,
                                                                      ref.sha256)))
            self._names[key] = name
        return quote(self._names[key])


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str).encode()


@dataclass
class Selection:
    """The child's entries split for a family-facing export."""

    included: list[VoiceEntry] = field(default_factory=list)
    withheld: list[tuple[VoiceEntry, str]] = field(default_factory=list)  # listed, not shown
    left_out: list[tuple[VoiceEntry, str]] = field(default_factory=list)  # every one not in it


def select_entries(db: Session, child: Child) -> Selection:
    share_ids = consent.family_share_consent_ids(db, child.id)
    all_entries = list(db.exec(select(VoiceEntry).where(VoiceEntry.child_id == child.id)
                               .order_by(VoiceEntry.captured_at, VoiceEntry.id)))
    alerted = set(db.exec(select(SafeguardingAlert.entry_id).where(
        SafeguardingAlert.child_id == child.id)))
    chosen = Selection()
    for entry in all_entries:
        if entry.id in alerted:
            chosen.left_out.append((entry, "safeguarding_alert"))
            continue
        reason = consent.family_withheld_reason(entry, share_ids)
        if reason is None:
            chosen.included.append(entry)
            continue
        if reason in WITHHELD_REASONS:
            chosen.withheld.append((entry, reason))
        elif reason == "not_active":
            reason = entry.status if entry.status in LEFT_OUT_REASONS else "withdrawn"
        chosen.left_out.append((entry, reason))
    return chosen


def left_out(ctx: Context, child_id: uuid.UUID) -> dict[str, Any]:
    """What the family's export of this child leaves out now, and why: for the manager
    who downloads it (never in the zip itself)."""
    child = access.child_for(ctx, child_id, Need.oversee)
    chosen = select_entries(ctx.db, child)
    items = [{"entry_id": str(e.id), "kind": e.kind, "captured_at": _iso(e.captured_at),
              "session_id": str(e.session_id), "reason": reason,
              "explanation": LEFT_OUT_REASONS[reason]} for e, reason in chosen.left_out]
    counts: dict[str, int] = {}
    for item in items:
        counts[item["reason"]] = counts.get(item["reason"], 0) + 1
    audit.record(ctx, "child.export.left_out", child_id=child.id, object_type="child",
                 object_id=child.id)
    ctx.db.commit()
    return {"child_id": str(child.id), "at": _iso(utcnow()), "included": len(chosen.included),
            "left_out": items, "counts": counts}


def build(ctx: Context, child_id: uuid.UUID, store: MediaStore) -> ExportBundle:
    child = access.child_for(ctx, child_id, Need.oversee)
    db, now = ctx.db, utcnow()
    chosen = select_entries(db, child)
    included_out = entries_out(db, chosen.included)
    included_ids = {e.id for e in chosen.included}
    consents = [consent.consent_out(c) for c in db.exec(
        select(Consent).where(Consent.child_id == child.id)
        .order_by(Consent.created_at, Consent.id))]
    versions = _plan_versions(db, child, included_ids)
    sessions = {s.id: s for s in db.exec(select(CaptureSession).where(
        CaptureSession.id.in_({e.session_id for e in chosen.included})))} \
        if chosen.included else {}
    files = ExportFiles(store)
    views, credits = entry_views(db, included_out, files, full_photos=True)

    withheld_list = [{"id": str(e.id), "kind": e.kind, "captured_at": _iso(e.captured_at),
                      "reason": reason} for e, reason in chosen.withheld]
    members = [
        ExportMember("entries.json", _json({
            "child_id": str(child.id), "exported_at": _iso(now),
            # Whether an entry raised an alert is the council's, not the family's.
            "entries": [e.model_dump(mode="json", exclude={"raised_alert"})
                        for e in included_out],
            "withheld": withheld_list})),
        ExportMember("consents.json", _json({"consents": [c.model_dump(mode="json")
                                                          for c in consents]})),
        ExportMember("plan-versions.json", _json({"versions": versions})),
        ExportMember("symbols.obl", _json(obl_document(child, included_out, sessions))),
        *files.members,
    ]
    index = index_html(child, views, credits, chosen, consents, versions,
                       [m.name for m in members], now)
    members.insert(0, ExportMember("index.html", index.encode()))
    audit.record(ctx, "child.export", child_id=child.id, object_type="child",
                 object_id=child.id)
    ctx.db.commit()
    return ExportBundle(f"childvoice-export-{child.id}-{now.date().isoformat()}.zip", members,
                        left_out=len(chosen.left_out))


def _plan_versions(db: Session, child: Child, included_ids: set[uuid.UUID]) -> list[dict]:
    out = []
    for version in db.exec(select(PlanVersion).where(PlanVersion.child_id == child.id)
                           .order_by(PlanVersion.version)):
        view = version_view(db, version)
        view.plan.latest_voice = [e for e in view.plan.latest_voice if e.id in included_ids]
        for section in view.plan.sections:
            section.pinned_entries = [e for e in section.pinned_entries
                                      if e.id in included_ids]
        out.append(view.model_dump(mode="json"))
    return out


# --- Open Board Logging ------------------------------------------------------------------

def obl_document(child: Child, entries: list[EntryOut],
                 sessions: dict[uuid.UUID, CaptureSession]) -> dict[str, Any]:
    """The child's symbol choices (symbols and mat entries) as an open-board-log-0.1 file:
    one log session per capture session; a `button` event per choice (mat placements
    carry their scale value in an ext_ field) and an `utterance` for each entry of two or
    more symbols."""
    by_session: dict[uuid.UUID, list[EntryOut]] = {}
    for entry in entries:
        if entry.kind in ("symbols", "mat"):
            by_session.setdefault(entry.session_id, []).append(entry)
    log_sessions = []
    for session_id, session_entries in by_session.items():
        session = sessions.get(session_id)
        events: list[dict[str, Any]] = []
        for entry in session_entries:
            stamp = _iso(entry.captured_at)
            common = {"timestamp": stamp, "board_id": str(entry.board_id), "modeling": False,
                      "ext_childvoice_entry_id": str(entry.id),
                      "ext_childvoice_source": entry.source}
            if entry.kind == "symbols":
                for i, choice in enumerate(entry.choices or []):
                    event = {"id": f"{entry.id}:{i}", "type": "button",
                             "button_id": choice.button_id, "label": choice.label, **common}
                    if choice.vocalization:
                        event["vocalization"] = choice.vocalization
                    events.append(event)
                if len(entry.choices or []) > 1:
                    events.append({
                        "id": f"{entry.id}:utterance", "type": "utterance",
                        "text": " ".join(c.vocalization or c.label or c.button_id
                                         for c in entry.choices),
                        "buttons": [{"id": c.button_id, "board_id": str(entry.board_id),
                                     "label": c.label} for c in entry.choices], **common})
            else:
                for i, placement in enumerate(entry.placements or []):
                    events.append({"id": f"{entry.id}:{i}", "type": "button",
                                   "button_id": placement.button_id, "label": placement.label,
                                   "ext_childvoice_mat_scale_value": placement.scale_value,
                                   **common})
        times = [e.captured_at for e in session_entries]
        log_sessions.append({
            "id": str(session_id), "type": "log",
            "started": _iso(session.started_at if session else min(times)),
            "ended": _iso((session.ended_at if session and session.ended_at else None)
                          or max(times)),
            "events": events})
    return {"format": OBL_FORMAT, "user_id": f"childvoice:{child.id}", "source": "childvoice",
            "locale": "en", "sessions": log_sessions}


# --- the page -----------------------------------------------------------------------

_ASSENT = {"agreed": "agreed", "dissented": "said no",
           "not_able_to_express": "could not tell us"}
_KINDS = {"symbols": "pictures you chose", "mat": "pictures you sorted", "photo": "a photo",
          "audio": "a recording", "observation": "something we noticed", "text": "words"}
# The page may show its own styles, pictures and sound from the folder; nothing may run.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; media-src 'self'"


def index_html(child: Child, views: list, credits: list, chosen: Selection, consents: list,
               versions: list[dict], files: list[str], now: datetime) -> str:
    """The folder's page, written to the child (templates/export_index.html)."""
    def who(c) -> str:  # noqa: ANN001
        return {"child": "You", "parent_or_carer": c.giver_name or "A parent or carer",
                "best_interests": "A best-interests decision"}.get(c.given_by, c.given_by)

    agreed = [{"when": long_date(c.created_at), "who": who(c),
               "scopes": ", ".join(s.value.replace("_", " ") for s in c.scopes),
               "child": _ASSENT.get(c.child_assent, c.child_assent), "status": c.status}
              for c in consents]
    kept_back = [{"when": long_date(e.captured_at), "what": _KINDS.get(e.kind, e.kind),
                  "why": WITHHELD_REASONS[reason]} for e, reason in chosen.withheld]
    plans = [{"version": v["version"],
              "when": long_date(datetime.fromisoformat(str(v["published_at"]))),
              "sections": [{"title": s["title"], "sentences": sentences(s["text"])}
                           for s in v["plan"]["sections"] if s["text"]]} for v in versions]
    return render_text(None, "export_index.html", {
        "csp": PAGE_CSP, "css": (STATIC_DIR / "pages.css").read_text(), "made_on": long_date(now), "entries": views, "credits": credits,
        "kept_back": kept_back,
        # Anything not in the folder beyond what is listed as kept back: said, not named.
        "more_left_out": len(chosen.left_out) > len(chosen.withheld),
        "consents": agreed, "plans": plans,
        "files": [{"name": f, "href": quote(f)} for f in files]})


# --- streaming the zip -------------------------------------------------------------------

class _Sink(io.RawIOBase):
    """A write-only, unseekable file the zip writes into; we hand out what it holds."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # noqa: ANN001
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def stream_zip(members: list[ExportMember], when: datetime | None = None) -> Iterator[bytes]:
    stamp = (when or utcnow()).astimezone(timezone.utc).timetuple()[:6]
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as out:
                for chunk in member.iter_chunks():
                    out.write(chunk)
                    if (data := sink.take()):
                        yield data
            if (data := sink.take()):
                yield data
    if (data := sink.take()):
        yield data
