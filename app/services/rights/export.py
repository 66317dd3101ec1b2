"""Subject access export: a zip a family can open, and another AAC system can read.

    index.html          an accessible page (no script) listing everything in the folder
    entries.json        what the child said, as the API shapes it; withheld items listed
    consents.json       every consent recorded for the child
    plan-versions.json  every published version of My plan
    symbols.obl         the child's symbol choices as Open Board Logging (open-board-log-0.1)
    media/…             the photos and recordings of the included entries (clean copies:
                        no EXIF, GPS or container metadata), named <entry id>-<media id>

It is family-facing: an entry is in it only while the consent it was made under covers
`share_family` (withdrawn: out at once), and an entry with other people in it is listed
but withheld until a worker clears it. An entry that raised a safeguarding alert is left
out altogether (not even listed): handing it to the family could warn the very person
the child was telling us about; the manager decides about it outside the export. The
statutory record itself is unchanged.

The data is gathered, and the export audited, inside the request; the zip is then
streamed member by member, so media files never have to sit in memory.
"""

from __future__ import annotations

import html
import io
import json
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timezone
from typing import Any

from sqlmodel import Session, select

from app.core.clock import utcnow
from app.core.context import Context
from app.models.capture import CaptureSession, EntryOut, VoiceEntry
from app.models.child import Child
from app.models.consent import Consent
from app.models.plan import PlanVersion
from app.models.safeguarding import SafeguardingAlert
from app.services import access, audit, consent
from app.services.access import Need
from app.services.capture import entries_out
from app.services.media.records import file_extension
from app.services.plans import version_view
from app.storage import MediaStore

OBL_FORMAT = "open-board-log-0.1"

WITHHELD_REASONS = {
    "other_people_not_cleared": "Other people appear or are heard in it. A worker can "
                                "check it and clear it for sharing.",
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


def media_members(entries: list[EntryOut], store: MediaStore) -> list[ExportMember]:
    """One member per photo or recording the included entries may still show, read from
    the store in chunks as the zip is written (never held in memory)."""
    members = []
    for entry in entries:
        for item in entry.media:
            name = f"media/{entry.id}-{item.id}.{file_extension(item.content_type)}"
            members.append(ExportMember(name, chunks=partial(store.open_range, item.sha256)))
    return members


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str).encode()


def build(ctx: Context, child_id: uuid.UUID, store: MediaStore) -> ExportBundle:
    child = access.child_for(ctx, child_id, Need.oversee)
    db, now = ctx.db, utcnow()
    share_ids = consent.family_share_consent_ids(db, child.id)
    all_entries = list(db.exec(select(VoiceEntry).where(VoiceEntry.child_id == child.id)
                               .order_by(VoiceEntry.captured_at, VoiceEntry.id)))
    alerted = set(db.exec(select(SafeguardingAlert.entry_id).where(
        SafeguardingAlert.child_id == child.id)))
    included: list[VoiceEntry] = []
    withheld: list[tuple[VoiceEntry, str]] = []
    for entry in all_entries:
        if entry.id in alerted:
            continue
        reason = consent.family_withheld_reason(entry, share_ids)
        if reason is None:
            included.append(entry)
        elif reason in WITHHELD_REASONS:
            withheld.append((entry, reason))
        # Anything else (no share_family consent now, retracted, erased) is simply out.
    included_out = entries_out(db, included)
    included_ids = {e.id for e in included}
    consents = [consent.consent_out(c) for c in db.exec(
        select(Consent).where(Consent.child_id == child.id)
        .order_by(Consent.created_at, Consent.id))]
    versions = _plan_versions(db, child, included_ids)
    sessions = {s.id: s for s in db.exec(select(CaptureSession).where(
        CaptureSession.id.in_({e.session_id for e in included})))} if included else {}
    media = media_members(included_out, store)

    withheld_list = [{"id": str(e.id), "kind": e.kind, "captured_at": _iso(e.captured_at),
                      "reason": reason} for e, reason in withheld]
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
        *media,
    ]
    index = index_html(child, included_out, withheld_list, consents, versions,
                       [m.name for m in members], now)
    members.insert(0, ExportMember("index.html", index.encode()))
    audit.record(ctx, "child.export", child_id=child.id, object_type="child",
                 object_id=child.id)
    ctx.db.commit()
    return ExportBundle(f"childvoice-export-{child.id}-{now.date().isoformat()}.zip", members)


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


# --- the accessible index ----------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _said(entry: EntryOut) -> str:
    if entry.kind == "symbols":
        return ", then ".join(_e(c.label or c.button_id) for c in entry.choices or [])
    if entry.kind == "mat":
        return "; ".join(f"{_e(p.label or p.button_id)}: {_e(p.scale_value)}"
                         for p in entry.placements or [])
    if entry.text:
        return _e(entry.text)
    return f"A {entry.kind} (see the media folder)"


_ASSENT = {"agreed": "agreed", "dissented": "said no",
           "not_able_to_express": "could not tell us"}
# The page may show its own styles, pictures and sound from the folder; nothing may run.
_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; media-src 'self'"

_SOURCES = {"child_direct": "You chose this yourself",
            "child_assisted": "You chose this with help",
            "adult_interpretation": "What an adult saw or understood",
            "parent_or_carer_report": "What a parent or carer told us"}


def index_html(child: Child, entries: list[EntryOut], withheld: list[dict],
               consents: list, versions: list[dict], files: list[str], now: datetime) -> str:
    name = _e(child.preferred_name)
    rows = "\n".join(
        f"<tr><td>{_e(e.captured_at.date().isoformat())}</td><td>{_e(e.prompt or '')}</td>"
        f"<td>{_said(e)}</td><td>{_e(_SOURCES.get(e.source, e.source))}</td></tr>"
        for e in entries)
    entries_part = (f"<table><caption>Everything in this folder that {name} said"
                    "</caption><thead><tr><th scope=\"col\">Date</th><th scope=\"col\">"
                    "What we asked</th><th scope=\"col\">What was said</th><th scope=\"col\">"
                    f"Who said it</th></tr></thead><tbody>\n{rows}\n</tbody></table>"
                    if entries else "<p>There is nothing to show here.</p>")
    withheld_part = ("<ul>" + "".join(
        f"<li>Something from {_e(w['captured_at'][:10])} ({_e(w['kind'])}): "
        f"{_e(WITHHELD_REASONS.get(w['reason'], w['reason']))}</li>" for w in withheld)
        + "</ul>") if withheld else "<p>Nothing was kept back.</p>"
    def who(c) -> str:  # noqa: ANN001
        return {"child": "You", "parent_or_carer": c.giver_name or "A parent or carer",
                "best_interests": "A best-interests decision"}.get(c.given_by, c.given_by)

    def child_said(c) -> str:  # noqa: ANN001
        return _ASSENT.get(c.child_assent, c.child_assent)

    consent_items = "".join(
        f"<li>{_e(c.created_at.date().isoformat())}: {_e(who(c))} agreed to: "
        f"{_e(', '.join(s.value.replace('_', ' ') for s in c.scopes))}. "
        f"You {_e(child_said(c))}. This is {_e(c.status)}.</li>" for c in consents)
    plan_part = "".join(
        f"<section><h3>My plan, version {_e(v['version'])} "
        f"({_e(str(v['published_at'])[:10])})</h3>" + "".join(
            f"<h4>{_e(s['title'])}</h4><p>{_e(s['text'])}</p>"
            for s in v["plan"]["sections"] if s["text"]) + "</section>" for v in versions) \
        or "<p>No plan has been published yet.</p>"
    file_items = "".join(f"<li><a href=\"{_e(f)}\">{_e(f)}</a></li>" for f in files)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_PAGE_CSP}">
<title>What {name} told us</title>
<style>
body {{ font-family: Arial, Helvetica, sans-serif; font-size: 1.2rem; line-height: 1.5;
       max-width: 60rem; margin: 1rem auto; padding: 0 1rem; color: #111; background: #fff; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #555; padding: .4rem; text-align: left; vertical-align: top; }}
caption {{ text-align: left; font-weight: bold; padding: .4rem 0; }}
</style>
</head>
<body>
<main>
<h1>What {name} told us</h1>
<p>This folder holds what {name} said and showed us, made on {_e(now.date().isoformat())}.
You can open every file in it. This page lists them.</p>
<h2>What was said</h2>
{entries_part}
<h2>Things we kept back</h2>
{withheld_part}
<h2>Who agreed to what</h2>
<ul>{consent_items}</ul>
<h2>My plan</h2>
{plan_part}
<h2>Files in this folder</h2>
<ul>{file_items}</ul>
<p>symbols.obl is for communication apps (Open Board Logging format).</p>
</main>
</body>
</html>
"""


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
