"""Media as the record shows it: which media an entry carries and whether it may still be
shown, the files served for it, and the content-addressed blobs behind them.

Uploads are in `media_capture`; checking and cleaning the bytes in `photos` and `audio`.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session, func, select

from app.core.context import Context
from app.core.db import is_postgres
from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound, Problem
from app.models.board import BoardAsset
from app.models.capture import VoiceEntry
from app.models.media import Media, MediaErase, MediaFile, MediaOut, MediaTombstone
from app.services import access, audit, consent
from app.services.access import Need
from app.storage import MediaStore, staging_dir

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
    access.entry_readable(ctx, media.child_id, media.session_id, MEDIA_NOT_FOUND)
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
                data: MediaErase) -> uuid.UUID:
    """A manager of the child's team erases one photo or recording, with a reason.
    Returns the id of the entry that carried it (which keeps the tombstone)."""
    media = access.record_for(ctx, Media, media_id, Need.oversee, MEDIA_NOT_FOUND)
    if media.erased_at is not None:
        raise Conflict("This media was already erased.",
                       erased_at=media.erased_at.isoformat())
    keys = erase(ctx.db, media, cause="manager", reason=data.reason, by=ctx.user.id)
    audit.record(ctx, "media.erase", child_id=media.child_id, object_type="media",
                 object_id=media.id)
    entry_id = media.entry_id
    ctx.db.commit()
    delete_if_unreferenced(ctx.db, store, keys)
    return entry_id


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


def sweep(db: Session, store: MediaStore, media_root: Path, *, blob_age_s: float = 3600,
          staging_age_s: float = 86400) -> dict[str, int]:
    """What a crash can leave: files in the staging area (an upload being received or
    processed when the process died) and blobs put into the store whose transaction never
    committed. Neither is visible through the API; this removes both, leaving anything
    young enough to belong to an upload still in progress."""
    now = time.time()
    staged = 0
    for path in staging_dir(media_root).iterdir():
        if now - path.stat().st_mtime > staging_age_s:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            staged += 1
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
