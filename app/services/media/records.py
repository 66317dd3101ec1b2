"""Media as the record shows it: which media an entry carries and whether it may still be
shown, the files served for it, and the content-addressed blobs behind them.

Uploads are in `media_capture`; checking and cleaning the bytes in `photos` and `audio`.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import String, cast, text
from sqlmodel import Session, func, select

from app.core.context import Context
from app.core.db import is_postgres
from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound, Problem
from app.models.board import Board, BoardAsset, BoardVersion, ChildBoardPhoto
from app.models.capture import VoiceEntry
from app.models.erasure import ErasedCopy, ErasureOut, RemainingCopy
from app.models.media import Media, MediaErase, MediaFile, MediaOut, MediaTombstone
from app.services import access, audit, consent
from app.services.access import Need
from app.storage import MediaStore, sweep_staging

MEDIA_PATH = "/api/v1/media"
MEDIA_NOT_FOUND = "No media with this id is visible to you."
_BLOB_LOCK_SPACE = 0x63766D65  # "cvme"

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp",
               "image/heic": "heic", "audio/mp4": "m4a", "audio/webm": "webm",
               "audio/ogg": "ogg", "audio/mpeg": "mp3", "audio/wav": "wav"}

# What each URL serves, by preference: the main URL shows the browser rendition if there
# is one (HEIC), else the clean stored copy.
SERVED_ROLES = {"main": ("display", "stored"), "thumbnail": ("thumbnail",),
                "playback": ("playback",)}


@dataclass
class EntryMedia:
    items: list[MediaOut] = field(default_factory=list)
    withdrawn: bool = False
    erased: list[MediaTombstone] = field(default_factory=list)


def tombstone(media: Media) -> MediaTombstone:
    return MediaTombstone(id=media.id, kind=media.kind, erased_at=media.erased_at,
                          erasure_cause=media.erasure_cause, erasure_reason=media.erasure_reason)


def _shown(entry: VoiceEntry, media: Media, withdrawn: set[uuid.UUID]) -> bool:
    """Media is shown while its entry is active and neither the entry's consent nor the
    consent the media was captured under has been withdrawn."""
    return entry.status == "active" and entry.consent_id not in withdrawn and \
        media.consent_id not in withdrawn


def file_extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type, "bin")


def media_out(media: Media, files: dict[str, MediaFile]) -> MediaOut:
    main = files.get("display") or files["stored"]
    base = f"{MEDIA_PATH}/{media.id}"
    return MediaOut(id=media.id, kind=media.kind, content_type=main.content_type,
                    bytes=main.bytes, sha256=main.sha256, width=media.width,
                    height=media.height, duration_s=media.duration_s, codec=media.codec,
                    channels=media.channels, sample_rate=media.sample_rate,
                    caption=media.caption, taken_at=media.taken_at,
                    upload_sha256=media.upload_sha256, url=base,
                    thumbnail_url=f"{base}/thumbnail" if "thumbnail" in files else None,
                    playback_url=f"{base}/playback" if "playback" in files else None)


def media_for_entries(db: Session, entries: list[VoiceEntry]) -> dict[uuid.UUID, EntryMedia]:
    """The media each entry carries and may still show, in three queries for any number
    of entries. Entries without media are left out of the answer."""
    by_id = {e.id: e for e in entries}
    if not by_id:
        return {}
    rows = list(db.exec(select(Media).where(Media.entry_id.in_(list(by_id)))
                        .order_by(Media.created_at, Media.id)))
    if not rows:
        return {}
    files: dict[uuid.UUID, dict[str, MediaFile]] = defaultdict(dict)
    for f in db.exec(select(MediaFile).where(MediaFile.media_id.in_([m.id for m in rows]))):
        files[f.media_id][f.role] = f
    withdrawn = consent.withdrawn_ids(db, {by_id[m.entry_id].consent_id for m in rows} |
                                      {m.consent_id for m in rows})
    out: dict[uuid.UUID, EntryMedia] = {}
    for m in rows:
        entry = by_id[m.entry_id]
        view = out.setdefault(entry.id, EntryMedia())
        if m.erased_at is not None:
            view.erased.append(tombstone(m))
        elif _shown(entry, m, withdrawn) and "stored" in files[m.id]:
            view.items.append(media_out(m, files[m.id]))
        else:
            view.withdrawn = True
    return out


def shown_media_ids(db: Session, entry_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Of the media of these entries, the ids that may be shown now."""
    entries = list(db.exec(select(VoiceEntry).where(VoiceEntry.id.in_(entry_ids)))) \
        if entry_ids else []
    return {m.id for view in media_for_entries(db, entries).values() for m in view.items}


# --- serving ---------------------------------------------------------------------------

@dataclass
class ServedFile:
    sha256: str
    size: int
    content_type: str
    filename: str


def open_media(ctx: Context, media_id: uuid.UUID, which: str) -> ServedFile:
    """The file behind one media URL (`which`: main, thumbnail or playback), for those who
    may read the entry it belongs to (a capture token: its own session's only)."""
    media = ctx.db.get(Media, media_id)
    if media is None:
        raise NotFound(MEDIA_NOT_FOUND)
    access.entry_readable(ctx, media.child_id, media.session_id, MEDIA_NOT_FOUND,
                          created_by=media.created_by)
    if media.erased_at is not None:
        raise Problem("This media was erased; the record keeps only that it existed.",
                      status=410, slug="media-erased", title="Media erased")
    entry = ctx.db.get(VoiceEntry, media.entry_id)
    withdrawn = consent.withdrawn_ids(ctx.db, {entry.consent_id, media.consent_id})
    if not _shown(entry, media, withdrawn):
        raise Problem("This media is no longer shown: the consent it was captured under has "
                      "been withdrawn, or its entry was withdrawn.", status=410,
                      slug="media-withdrawn", title="Media withdrawn")
    files = {f.role: f for f in ctx.db.exec(select(MediaFile)
                                            .where(MediaFile.media_id == media.id))}
    chosen = next((files[r] for r in SERVED_ROLES[which] if r in files), None)
    if chosen is None:
        what = {"thumbnail": "thumbnail: only photos have one",
                "playback": "playback copy: only recordings have one"}.get(which, "file")
        raise NotFound(f"This media has no {what}.")
    audit.record(ctx, f"media.read.{which}", child_id=media.child_id, object_type="media",
                 object_id=media.id)
    ctx.db.commit()
    extension = file_extension(chosen.content_type)
    suffix = "" if which == "main" else f"-{which}"
    return ServedFile(sha256=chosen.sha256, size=chosen.bytes,
                      content_type=chosen.content_type,
                      filename=f"{media.kind}-{media.id}{suffix}.{extension}")


# --- erasure ---------------------------------------------------------------------------

def erase(db: Session, media: Media, *, cause: str, reason: str | None,
          by: uuid.UUID | None = None) -> list[str]:
    """Take a media item's files out of the record, leaving the row as a tombstone (who,
    when, why). Returns the blob keys it released: once the transaction has committed,
    pass them to `delete_if_unreferenced` (a blob may still be shared by other media)."""
    files = list(db.exec(select(MediaFile).where(MediaFile.media_id == media.id)))
    keys = [f.sha256 for f in files]
    lock_blobs(db, keys)
    for f in files:
        db.delete(f)
    media.erased_at, media.erased_by = utcnow(), by
    media.erasure_cause, media.erasure_reason = cause, reason
    db.add(media)
    db.flush()
    return keys


def erase_media(ctx: Context, store: MediaStore, media_id: uuid.UUID,
                data: MediaErase) -> tuple[uuid.UUID, ErasureOut]:
    """A manager of the child's team erases one photo or recording, with a reason, and with
    it every other copy of its bytes that exists only as a picture of this child's own
    boards. Returns the id of the entry that carried it (which keeps the tombstone) and
    what the erasure reached: copies it erased, and copies that remain and why."""
    media = access.record_for(ctx, Media, media_id, Need.oversee, MEDIA_NOT_FOUND)
    if media.erased_at is not None:
        raise Conflict("This media was already erased.",
                       erased_at=media.erased_at.isoformat())
    keys = erase(ctx.db, media, cause="manager", reason=data.reason, by=ctx.user.id)
    report = ErasureOut(media_id=media.id)
    keys += _erase_board_copies(ctx, media, keys, report)
    report.copies_remaining += _other_entries_with(ctx.db, media, keys)
    audit.record(ctx, "media.erase", child_id=media.child_id, object_type="media",
                 object_id=media.id)
    entry_id = media.entry_id
    ctx.db.commit()
    delete_if_unreferenced(ctx.db, store, keys)
    return entry_id, report


def _versions_naming(db: Session, key: str) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
    """(board id, owner child) of every board with a version that names this blob."""
    return list(db.exec(select(Board.id, Board.owner_child_id).distinct()
                        .join(BoardVersion, BoardVersion.board_id == Board.id)
                        .where(cast(BoardVersion.content, String).contains(key))))


def _erase_board_copies(ctx: Context, media: Media, keys: list[str],
                        report: ErasureOut) -> list[str]:
    """The same photo uploaded for the child's personal boards is the same blob (both go
    through the one photo pipeline): take it out of the child's board photos, and out of
    the store unless something outside this child's record uses it too. Returns the keys
    it released."""
    released: list[str] = []
    for key in sorted(set(keys)):
        mine = list(ctx.db.exec(select(ChildBoardPhoto).where(
            ChildBoardPhoto.child_id == media.child_id, ChildBoardPhoto.sha256 == key)))
        boards = _versions_naming(ctx.db, key)
        if not mine and not any(owner == media.child_id for _, owner in boards):
            continue
        own = sorted(b for b, owner in boards if owner == media.child_id)
        elsewhere = [b for b, owner in boards if owner != media.child_id] or \
            ctx.db.exec(select(ChildBoardPhoto.id).where(
                ChildBoardPhoto.sha256 == key,
                ChildBoardPhoto.child_id != media.child_id)).first()
        if elsewhere:
            report.copies_remaining.append(RemainingCopy(
                kind="outside_record", detail="The same picture is also used outside this "
                "child's record (a library board or another child's boards), which this "
                "erasure does not reach: its bytes stay for those, and this child's boards "
                "still show it until a new version of them leaves it out."))
            continue
        for photo in mine:
            ctx.db.delete(photo)
        asset = ctx.db.exec(select(BoardAsset).where(BoardAsset.sha256 == key)).first()
        if asset is not None:
            ctx.db.delete(asset)
        released.append(key)
        report.copies_erased.append(ErasedCopy(
            kind="board_photo", board_ids=own, detail="The same photo was a picture of "
            "this child's own boards: its bytes are erased too, and those boards show the "
            "picture as missing."))
        audit.record(ctx, "board.photo.erase", child_id=media.child_id,
                     object_type="board_photo", object_id=key)
    ctx.db.flush()
    return released


def _other_entries_with(db: Session, media: Media, keys: list[str]) -> list[RemainingCopy]:
    """Other media of this child carrying the same bytes: each is its own item of the
    record, erased on its own."""
    rows = db.exec(select(Media.id, Media.entry_id).distinct()
                   .join(MediaFile, MediaFile.media_id == Media.id)
                   .where(MediaFile.sha256.in_(keys), Media.child_id == media.child_id,
                          Media.id != media.id)
                   .order_by(Media.id)).all() if keys else []
    return [RemainingCopy(kind="entry_media", entry_id=entry_id, media_id=media_id,
                          detail="Another entry of this record carries the same bytes; "
                          "they stay until that media is erased too.")
            for media_id, entry_id in rows]


def past_retention(db: Session, kind: str, cutoff) -> list[Media]:  # noqa: ANN001
    """Media of `kind` captured before `cutoff` and not yet erased."""
    return list(db.exec(select(Media).where(Media.kind == kind, Media.erased_at.is_(None),
                                            Media.created_at < cutoff)))


# --- blobs -----------------------------------------------------------------------------

def lock_blobs(db: Session, keys: list[str]) -> None:
    """Serialise work on these blobs until the transaction ends, so a blob cannot be
    deleted as unreferenced while another transaction is about to reference it.
    PostgreSQL: transaction advisory locks (in sorted order, so no deadlock). SQLite:
    every write transaction already holds the database's one write lock."""
    if is_postgres(db.get_bind()):
        for key in sorted(set(keys)):
            db.exec(text("SELECT pg_advisory_xact_lock(:space, :key)").bindparams(
                space=_BLOB_LOCK_SPACE, key=int(key[:8], 16) - 2 ** 31))
    else:
        db.exec(text("SELECT 1"))  # begins the (immediate) transaction: the write lock


def delete_if_unreferenced(db: Session, store: MediaStore, keys: list[str]) -> None:
    """Remove blobs no media file row and no board asset names any more (after a failed
    or lost upload)."""
    if not keys:
        return
    db.rollback()
    lock_blobs(db, keys)
    for key in set(keys):
        used = db.exec(select(func.count()).select_from(MediaFile)
                       .where(MediaFile.sha256 == key)).one()
        used += db.exec(select(func.count()).select_from(BoardAsset)  # a board's picture
                        .where(BoardAsset.sha256 == key)).one()
        if not used:
            store.delete(key)
    db.commit()


def sweep(db: Session, store: MediaStore, media_root: Path, *,
          blob_age_s: float = 3600) -> dict[str, int]:
    """What a crash can leave: files in this host's staging area (an upload being received
    or processed when its process died: `sweep_staging`) and blobs put into the store whose
    transaction never committed. Neither is visible through the API; this removes both,
    leaving what a live process is using and blobs young enough to be committing now."""
    now = time.time()
    staged = sweep_staging(media_root)
    old = [key for key, written in store.keys() if now - written > blob_age_s]
    named = set()
    for i in range(0, len(old), 500):
        named |= set(db.exec(select(MediaFile.sha256).where(
            MediaFile.sha256.in_(old[i:i + 500]))))
        named |= set(db.exec(select(BoardAsset.sha256).where(
            BoardAsset.sha256.in_(old[i:i + 500]))))
    orphans = [key for key in old if key not in named]
    for i in range(0, len(orphans), 100):  # checked again under the blob lock
        delete_if_unreferenced(db, store, orphans[i:i + 100])
    db.commit()
    return {"staging": staged, "blobs": len(orphans)}
