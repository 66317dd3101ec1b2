"""What the My plan page shows: the plan written to the child, Easy Read style.

The plan's JSON (services/plans.py) says what is in the plan; this module turns it into
what a child reads: each entry as they gave it (the pictures they chose, a mat in its
columns, their photos, their recordings), who said it in words addressed to the child
("You said", "We noticed", "Your mum told us"), the section text one sentence to a line,
and the credits every symbol's licence asks for. Templates only lay this out.

Pictures and recordings are `FileRef`s; a `Links` object turns one into a URL: a signed,
short-lived link for a browser (services/media/signed.py), or a reference the PDF renderer
resolves from the media store itself (see `PdfFiles`), never over HTTP.

`entry_views` is reusable: the handover and timeline pages show entries the same way,
with the `_voice.html` macros.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from sqlmodel import Session, select

from app.core.context import Context
from app.core.errors import NotFound
from app.models.board import BoardAsset, BoardVersion
from app.models.capture import EntryOut
from app.models.child import Child
from app.models.consent import Consent
from app.models.media import MediaFile
from app.models.plan import PlanOut
from app.services import access, audit, plans
from app.services.access import Need
from app.services.boards.obf import ASSET_KEY, normalise_license
from app.services.media.signed import SignedUrls

# --- files ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FileRef:
    """One picture or recording a page shows, and the stored bytes behind it."""

    kind: str  # media | board | static
    sha256: str
    content_type: str
    media_id: uuid.UUID | None = None
    which: str | None = None          # main | thumbnail | playback (media)
    board_id: uuid.UUID | None = None
    version: int | None = None
    image_id: str | None = None
    path: str | None = None           # static: under /static
    label: str | None = None          # what it shows, in words (names files in an export)
    day: str | None = None            # the date it was captured, YYYY-MM-DD (media)


class Links(Protocol):
    def url(self, ref: FileRef) -> str: ...


class SignedLinks:
    """Browser links: signed for this viewer, short-lived; the page's own static files."""

    def __init__(self, signer: SignedUrls, viewer: uuid.UUID) -> None:
        self.signer, self.viewer = signer, viewer

    def url(self, ref: FileRef) -> str:
        if ref.kind == "media":
            return self.signer.media_url(ref.media_id, ref.which, self.viewer)
        if ref.kind == "board":
            return self.signer.board_image_url(ref.board_id, ref.version, ref.image_id,
                                               self.viewer)
        return f"/static/{ref.path}"


class PdfFiles:
    """Links for the PDF renderer: `childvoice-file:<sha256>` for stored bytes, which the
    renderer's url_fetcher reads from the store, only for files this page named; the
    page's own static files by their path."""

    SCHEME = "childvoice-file:"

    def __init__(self) -> None:
        self.named: dict[str, FileRef] = {}

    def url(self, ref: FileRef) -> str:
        if ref.kind == "static":
            return f"/static/{ref.path}"
        self.named[ref.sha256] = ref
        return f"{self.SCHEME}{ref.sha256}"


# --- what a page shows ---------------------------------------------------------------

@dataclass
class Picture:
    label: str | None
    alt: str
    src: str | None = None        # None: a word card, no picture to show


@dataclass
class MatColumn:
    title: str
    value: str
    icon: str | None
    pictures: list[Picture]


@dataclass
class Recording:
    src: str
    content_type: str
    duration: str | None


@dataclass
class VoiceView:
    id: uuid.UUID
    kind: str
    voice: str            # child | adult | family: how it is shown apart
    said_by: str          # "You said", "We noticed", "Your mum told us"
    helped: bool
    when: str
    prompt: str | None
    lead: str | None      # one plain sentence about what follows
    symbols: list[Picture] = field(default_factory=list)
    mat: list[MatColumn] = field(default_factory=list)
    photos: list[Picture] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)
    text: str | None = None
    media_withdrawn: bool = False


@dataclass
class CreditItem:
    label: str
    source_url: str | None


@dataclass
class Credit:
    """Pictures under one licence by one author, each with where it came from."""

    what: str  # "The picture of", "Pictures of", or the whole of what it credits
    items: list[CreditItem]
    author: str | None
    author_url: str | None
    licence: str
    licence_url: str | None


@dataclass
class SectionView:
    key: str
    title: str
    sentences: list[str]
    icon: str
    entries: list[VoiceView]


@dataclass
class PlanPage:
    child_id: uuid.UUID
    version: int | None
    published_at: datetime | None
    dated: str
    sections: list[SectionView]
    latest: list[VoiceView]
    credits: list[Credit]
    symbol_size: str
    labels_shown: bool


SECTION_ICONS = {"about_me": "plan/1f9d2.png", "important_to_me": "plan/1f9f8.png",
                 "my_goals": "plan/1f3c1.png", "how_to_support_me": "plan/1f64b.png",
                 "my_wishes_and_feelings": "plan/1f600.png"}
MAT_ICONS = {"like": "plan/1f44d.png", "not sure": "plan/1f937.png",
             "don't like": "plan/1f44e.png", "dont like": "plan/1f44e.png",
             "do not like": "plan/1f44e.png"}
MAT_TITLES = {"like": "You like these", "not sure": "You are not sure about these",
              "don't like": "You don't like these", "dont like": "You don't like these",
              "do not like": "You don't like these"}
# The pictures beside the words and on the mat's columns are OpenMoji's, like the starter
# boards: they are credited on every page that shows them.
OWN_PICTURES_CREDIT = Credit(
    what="The pictures beside the words and on the mat", items=[],
    author="OpenMoji", author_url="https://openmoji.org/", licence="CC BY-SA 4.0",
    licence_url="https://creativecommons.org/licenses/by-sa/4.0/")

# How a parent's or carer's report is introduced, from the relationship recorded on the
# consent it was made under ("mother" -> "Your mum told us").
_RELATIONSHIP_WORDS = {
    "mother": "mum", "mum": "mum", "mom": "mum", "mummy": "mum",
    "father": "dad", "dad": "dad", "daddy": "dad",
    "stepmother": "stepmum", "step-mother": "stepmum", "stepmum": "stepmum",
    "stepfather": "stepdad", "step-father": "stepdad", "stepdad": "stepdad",
    "grandmother": "nan", "nan": "nan", "nana": "nan", "gran": "gran", "grandma": "nan",
    "grandfather": "grandad", "grandad": "grandad", "grandpa": "grandad",
    "foster carer": "foster carer", "foster parent": "foster carer",
    "foster mother": "foster carer", "foster father": "foster carer",
    "carer": "carer", "guardian": "guardian", "special guardian": "guardian",
    "aunt": "aunt", "auntie": "aunt", "uncle": "uncle",
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    """One idea to a line: the worker's text split at each sentence end and line break."""
    return [s.strip() for s in _SENTENCE_END.split(text or "") if s.strip()]


def long_date(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return f"{when.day} {when:%B %Y}"


def _said_by(entry: EntryOut, consents: dict[uuid.UUID, Consent]) -> tuple[str, str]:
    if entry.source in ("child_direct", "child_assisted"):
        return "child", "You said"
    if entry.source == "adult_interpretation":
        return "adult", "We noticed"
    consent = consents.get(entry.consent_id) if entry.consent_id else None
    relationship = (consent.relationship or "").strip().lower() \
        if consent is not None and consent.given_by == "parent_or_carer" else ""
    who = _RELATIONSHIP_WORDS.get(relationship)
    return "family", f"Your {who} told us" if who else "Your family told us"


def _duration(seconds: float | None) -> str | None:
    if not seconds:
        return None
    whole = max(1, round(seconds))
    minutes, rest = divmod(whole, 60)
    if minutes:
        return f"{minutes} minute{'s' if minutes != 1 else ''}" + \
            (f" {rest} second{'s' if rest != 1 else ''}" if rest else "")
    return f"{rest} second{'s' if rest != 1 else ''}"


class _Lookups:
    """Everything the entries' pictures need, in a few queries for any number of entries:
    the board versions they name, those boards' stored images, the media files, the
    consents (for who reported)."""

    def __init__(self, db: Session, entries: list[EntryOut]) -> None:
        pairs = {(e.board_id, e.board_version) for e in entries
                 if e.board_id is not None and e.board_version is not None}
        self.versions: dict[tuple[uuid.UUID, int], dict] = {}
        if pairs:
            board_ids = {b for b, _ in pairs}
            for row in db.exec(select(BoardVersion).where(BoardVersion.board_id.in_(board_ids))):
                if (row.board_id, row.version) in pairs:
                    self.versions[(row.board_id, row.version)] = row.content
        shas = {img[ASSET_KEY] for content in self.versions.values()
                for img in content.get("images", []) if isinstance(img.get(ASSET_KEY), str)}
        self.assets = {a.sha256: a for a in db.exec(
            select(BoardAsset).where(BoardAsset.sha256.in_(shas)))} if shas else {}
        media_ids = [m.id for e in entries for m in e.media]
        self.files: dict[uuid.UUID, dict[str, MediaFile]] = {}
        if media_ids:
            for f in db.exec(select(MediaFile).where(MediaFile.media_id.in_(media_ids))):
                self.files.setdefault(f.media_id, {})[f.role] = f
        consent_ids = {e.consent_id for e in entries
                       if e.consent_id and e.source == "parent_or_carer_report"}
        self.consents = {c.id: c for c in db.exec(
            select(Consent).where(Consent.id.in_(consent_ids)))} if consent_ids else {}


class _Shaper:
    def __init__(self, db: Session, entries: list[EntryOut], links: Links,
                 full_photos: bool = False) -> None:
        self.look = _Lookups(db, entries)
        self.links = links
        self.full_photos = full_photos
        self.credits: dict[tuple, Credit] = {}

    def static(self, path: str, label: str | None = None) -> str:
        return self.links.url(FileRef(kind="static", sha256="", content_type="image/png",
                                  path=path, label=label))

    def _credit(self, licence: dict, label: str) -> None:
        key = tuple(licence.get(k) for k in ("type", "author_name", "author_url",
                                             "copyright_notice_url", "ext_childvoice_assumed"))
        if key not in self.credits:
            assumed = bool(licence.get("ext_childvoice_assumed"))
            self.credits[key] = Credit(
                what="", items=[], author=licence.get("author_name"),
                author_url=licence.get("author_url"),
                licence="no licence given: private, all rights reserved" if assumed
                else str(licence.get("type")),
                licence_url=licence.get("copyright_notice_url"))
        items = self.credits[key].items
        if label not in {i.label for i in items}:
            items.append(CreditItem(label, licence.get("source_url")))

    def picture(self, entry: EntryOut, button_id: str, label: str | None) -> Picture:
        """A chosen button as the child saw it: that board version's picture, label under."""
        shown = label or button_id
        content = self.look.versions.get((entry.board_id, entry.board_version), {})
        button = next((b for b in content.get("buttons", []) if b.get("id") == button_id), {})
        image = next((i for i in content.get("images", [])
                      if button.get("image_id") and i.get("id") == button["image_id"]), None)
        asset = self.look.assets.get(image.get(ASSET_KEY)) if image else None
        if asset is None:  # no stored picture (none, or only a link elsewhere): a word card
            return Picture(label=shown, alt=shown)
        self._credit(normalise_license(image.get("license")), shown)
        ref = FileRef(kind="board", sha256=asset.sha256, content_type=asset.content_type,
                      board_id=entry.board_id, version=entry.board_version,
                      image_id=image["id"], label=shown)
        return Picture(label=shown, alt=shown, src=self.links.url(ref))

    def entry(self, entry: EntryOut) -> VoiceView:
        voice, said_by = _said_by(entry, self.look.consents)
        view = VoiceView(id=entry.id, kind=entry.kind, voice=voice, said_by=said_by,
                         helped=entry.source == "child_assisted",
                         when=long_date(entry.captured_at), prompt=entry.prompt, lead=None,
                         media_withdrawn=entry.media_withdrawn)
        yours = voice == "child"
        if entry.kind == "symbols":
            view.lead = "You chose these pictures." if yours else "These pictures were chosen."
            view.symbols = [self.picture(entry, c.button_id, c.label)
                            for c in entry.choices or []]
        elif entry.kind == "mat":
            view.lead = "You sorted these pictures." if yours else "These pictures were sorted."
            for value in entry.scale or []:
                key = value.strip().lower()
                view.mat.append(MatColumn(
                    title=MAT_TITLES.get(key, value) if yours else value, value=value,
                    icon=self.static(MAT_ICONS[key], key) if key in MAT_ICONS else None,
                    pictures=[self.picture(entry, p.button_id, p.label)
                              for p in entry.placements or [] if p.scale_value == value]))
        elif entry.kind in ("observation", "text"):
            view.text = entry.text
        for item in entry.media:
            files = self.look.files.get(item.id, {})
            day = entry.captured_at.astimezone(timezone.utc).date().isoformat()
            if item.kind == "photo":
                roles = ("display", "stored") if self.full_photos else \
                    ("thumbnail", "display", "stored")
                role = next((r for r in roles if r in files), None)
                if role is None:
                    continue
                chosen = files[role]
                ref = FileRef(kind="media", sha256=chosen.sha256,
                              content_type=chosen.content_type, media_id=item.id,
                              which="thumbnail" if role == "thumbnail" else "main",
                              label="photo", day=day)
                words = item.caption or ("A photo you took" if yours else "A photo")
                view.photos.append(Picture(label=item.caption, alt=words,
                                           src=self.links.url(ref)))
            elif item.kind == "audio" and "playback" in files:
                chosen = files["playback"]
                ref = FileRef(kind="media", sha256=chosen.sha256,
                              content_type=chosen.content_type, media_id=item.id,
                              which="playback", label="recording", day=day)
                view.recordings.append(Recording(src=self.links.url(ref),
                                                 content_type=chosen.content_type,
                                                 duration=_duration(item.duration_s)))
        if entry.kind == "photo" and view.photos:
            view.lead = "You took this photo." if yours else "This photo was taken."
        elif entry.kind == "audio" and view.recordings:
            view.lead = "You recorded this." if yours else "This was recorded."
        return view

    def credit_list(self) -> list[Credit]:
        for credit in self.credits.values():
            credit.what = "Pictures of" if len(credit.items) > 1 else "The picture of"
        return list(self.credits.values())


def entry_views(db: Session, entries: list[EntryOut], links: Links, *,
                full_photos: bool = False) -> tuple[list[VoiceView], list[Credit]]:
    """Entries as the pages show them (for the handover and timeline too), and the credits
    their pictures need (the OpenMoji pictures on a mat's columns included). Photos are
    their thumbnails unless `full_photos`."""
    shaper = _Shaper(db, entries, links, full_photos)
    views = [shaper.entry(e) for e in entries]
    uses_own = any(column.icon for view in views for column in view.mat)
    return views, shaper.credit_list() + ([OWN_PICTURES_CREDIT] if uses_own else [])


# --- the plan page ---------------------------------------------------------------------

def _page(db: Session, child: Child, plan: PlanOut, links: Links, version: int | None,
          published_at: datetime | None) -> PlanPage:
    every = [e for s in plan.sections for e in s.pinned_entries]
    pinned_ids = {e.id for e in every}
    # Latest entries already pinned in a section are shown there, not twice.
    latest = [e for e in plan.latest_voice if e.id not in pinned_ids]
    shaper = _Shaper(db, every + latest, links)
    sections = [SectionView(key=s.key, title=s.title, sentences=sentences(s.text),
                            icon=shaper.static(SECTION_ICONS[s.key]),
                            entries=[shaper.entry(e) for e in s.pinned_entries])
                for s in plan.sections]
    latest_views = [shaper.entry(e) for e in latest]
    preferences = child.board_preferences or {}
    dated = long_date(published_at) if published_at else \
        (long_date(plan.updated_at) if plan.updated_at else "")
    return PlanPage(child_id=child.id, version=version, published_at=published_at,
                    dated=dated, sections=sections, latest=latest_views,
                    credits=shaper.credit_list() + [OWN_PICTURES_CREDIT],
                    symbol_size=str(preferences.get("symbol_size", "large")),
                    labels_shown=bool(preferences.get("labels_shown", True)))


def plan_page(ctx: Context, child_id: uuid.UUID, latest: int, links: Links,
              version: int | None = None, as_pdf: bool = False) -> PlanPage:
    """The plan as it reads now, or a published version, for a page or its PDF: checked
    for access and audited like the plan's JSON."""
    child = access.child_for(ctx, child_id, Need.read)
    if version is None:
        page = _page(ctx.db, child, plans.build_plan(ctx.db, child, latest), links, None, None)
        audit.record(ctx, "plan.pdf" if as_pdf else "plan.page", child_id=child.id,
                     object_type="plan", object_id=child.id)
    else:
        row = plans.version_row(ctx.db, child.id, version)
        if row is None:
            raise NotFound(f"This plan has no published version {version}.")
        view = plans.version_view(ctx.db, row)
        page = _page(ctx.db, child, view.plan, links, row.version, row.published_at)
        audit.record(ctx, "plan.version.pdf" if as_pdf else "plan.version.page",
                     child_id=child.id, object_type="plan_version", object_id=row.id)
    ctx.db.commit()
    return page
