"""Photos and recordings from the tablet: checked, cleaned, stored once, carried by an entry.

The router streams the upload to a file in the media root's staging area; this module
takes it from there:

1. `authorise`: the session may take captures from this caller (before any byte is read).
2. `prepare`: fields valid, not empty, within the kind's limit, consent active; a resend
   of the same `client_id` answers the stored entry here without touching the bytes.
3. the heavy part (`photos.check_and_clean_photo` / `audio.check_and_clean_audio`) runs
   in a worker thread, at most `media_jobs` at once per process.
4. `commit`: in one transaction, under a lock on the blobs' keys, the rows are inserted,
   the clean files moved into the store (content-addressed), the audit event written and
   the transaction committed; on any failure the rows roll back and any blob this upload
   created that no row names is removed. Ten identical uploads at once store one entry
   and one copy of each file: the unique client_id and the blob lock decide the winner,
   the others answer the winner's entry.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import shutil
import tempfile
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import anyio
from anyio import to_thread
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Context
from app.core.errors import Conflict, Invalid, PayloadTooLarge, UnsupportedMediaType
from app.core.multipart import ReceivedFile, ReceivedForm
from app.models.capture import CaptureSession, EntryOut, VoiceEntry
from app.models.media import Media, MediaFile, MediaUploadIn
from app.services import access, audit, capture
from app.services.media import audio, records as media, photos
from app.services.access import Need
from app.services.media.photos import CleanFile
from app.storage import MediaStore, staging_dir
from app.storage.base import file_sha256, fsync_file

ATTACHABLE_KINDS = ("symbols", "mat")


class MediaJobs:
    """At most `limit` media jobs (decode, clean, transcode) at once in this process; the
    others wait their turn without holding a worker thread. One limiter per event loop."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._limiters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._in_flight = 0  # running or waiting, on every loop of this process

    def _limiter(self) -> anyio.CapacityLimiter:
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.limit)
        return limiter

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        self._in_flight += 1
        try:
            return await to_thread.run_sync(functools.partial(fn, *args),
                                            limiter=self._limiter())
        finally:
            self._in_flight -= 1

    @property
    def waiting(self) -> int:
        """Jobs waiting for a slot (for /metrics)."""
        running = sum(limiter.borrowed_tokens for limiter in list(self._limiters.values()))
        return max(self._in_flight - running, 0)


# --- limits ----------------------------------------------------------------------------

def limit_for(settings: Settings, kind: str | None) -> int:
    if kind == "photo":
        return settings.media_photo_max_bytes
    if kind == "audio":
        return settings.media_audio_max_bytes
    return max(settings.media_photo_max_bytes, settings.media_audio_max_bytes)


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is larger than the limit of {limit:,} bytes "
                           f"({limit / 1024 / 1024:g} MiB); nothing was stored.",
                           max_bytes=limit)


# --- steps -----------------------------------------------------------------------------

def authorise(ctx: Context, session_id: uuid.UUID) -> CaptureSession:
    """The session, if this caller may add captures to it; then the transaction ends, so no
    lock is held while the body streams in."""
    session = access.session_for(ctx, session_id, Need.write)
    ctx.db.commit()
    return session


def parse_fields(fields: dict[str, str]) -> MediaUploadIn:
    values = {k: v for k, v in fields.items() if v != ""}  # empty form inputs are "not sent"
    try:
        return MediaUploadIn.model_validate(values)
    except ValidationError as exc:
        errors = [{"loc": ["body", *err.get("loc", ())], "msg": err.get("msg", ""),
                   "type": err.get("type", "")} for err in exc.errors()]
        names = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
        raise Invalid(f"Some fields are missing or invalid: {names}. See 'errors' for each.",
                      errors=errors) from None


def fingerprint(data: MediaUploadIn, upload_sha256: str) -> str:
    body = data.model_dump(mode="json") | {"upload_sha256": upload_sha256}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Prepared:
    data: MediaUploadIn
    upload: ReceivedFile
    fingerprint: str
    target_entry_id: uuid.UUID | None = None
    replay: EntryOut | None = None
    received_at: datetime = field(default_factory=utcnow)


def _stored_media(ctx: Context, client_id: uuid.UUID) -> Media | None:
    return ctx.db.exec(select(Media).where(Media.client_id == client_id)).first()


def _answer_stored(ctx: Context, session: CaptureSession, stored: Media,
                   print_: str) -> EntryOut:
    """A resend of the same upload answers the stored entry; anything else reusing the
    client_id is a conflict."""
    if stored.session_id != session.id or stored.fingerprint != print_:
        raise Conflict("This client_id was already used for a different upload. Make a new "
                       "client_id for each new photo or recording; resend only exact copies.",
                       slug="client-id-reused", media_id=str(stored.id))
    entry = ctx.db.get(VoiceEntry, stored.entry_id)
    audit.record(ctx, "media.resend", child_id=stored.child_id, object_type="media",
                 object_id=stored.id)
    ctx.db.commit()
    return capture.entries_out(ctx.db, [entry],
                               child_mode=ctx.actor.capture_session is not None)[0]


def prepare(ctx: Context, session: CaptureSession, data: MediaUploadIn,
            upload: ReceivedFile, settings: Settings) -> Prepared:
    if upload.size == 0:
        raise Invalid("The file is empty. Send the photo or recording itself.",
                      slug="empty-file", title="Empty file", field=["body", "file"])
    limit = limit_for(settings, data.kind)
    if upload.size > limit:
        raise too_large(limit)
    print_ = fingerprint(data, upload.sha256)
    prepared = Prepared(data=data, upload=upload, fingerprint=print_)
    try:
        stored = _stored_media(ctx, data.client_id)
        if stored is not None:
            prepared.replay = _answer_stored(ctx, session, stored, print_)
            return prepared
        if data.entry_client_id is None and \
                capture.stored_entry(ctx.db, data.client_id) is not None:
            raise Conflict("This client_id was already used for a different entry. Make a "
                           "new client_id for each new photo or recording.",
                           slug="client-id-reused")
        if data.entry_client_id is not None:
            target = capture.stored_entry(ctx.db, data.entry_client_id)
            if target is None or target.session_id != session.id:
                raise Invalid("entry_client_id names no entry of this session.",
                              field=["body", "entry_client_id"])
            if target.kind not in ATTACHABLE_KINDS:
                raise Invalid("Media can be attached to symbols or mat entries only; send "
                              "other photos and recordings as entries of their own.",
                              field=["body", "entry_client_id"])
            prepared.target_entry_id = target.id
        # Checked again when storing; checked now so a refused capture costs no decoding.
        capture.consent_at(ctx, settings, session.child_id, data.kind, data.captured_at,
                           received_at=prepared.received_at)
    except BaseException:
        ctx.db.rollback()
        raise
    ctx.db.commit()  # read only; ends the transaction so no lock is held while processing
    return prepared


@dataclass
class Processed:
    kind: str
    format: str
    files: list[CleanFile]
    facts: dict[str, Any] = field(default_factory=dict)
    digests: dict[Path, tuple[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _wrong_kind(what: str, kind: str) -> Invalid:
    return Invalid(f"This is {what}: send it with kind={kind}.", field=["body", "kind"],
                   slug="wrong-kind", title="Wrong kind of media")


def process(prepared: Prepared, workdir: Path, settings: Settings) -> Processed:
    """The heavy part: check and clean the bytes, then fsync and checksum every file made."""
    data, source = prepared.data, prepared.upload.path
    if data.kind == "photo":
        limits = photos.PhotoLimits(max_pixels=settings.media_photo_max_pixels,
                                    thumbnail_px=settings.media_thumbnail_px,
                                    jpeg_quality=settings.media_jpeg_quality)
        try:
            photo = photos.check_and_clean_photo(source, workdir, limits,
                                                 tz_hint=data.captured_at.tzinfo,
                                                 keep_taken_at=data.keep_taken_at)
        except UnsupportedMediaType:
            if audio.is_recording(source):
                raise _wrong_kind("a recording", "audio") from None
            raise
        result = Processed("photo", photo.format, photo.files,
                           {"width": photo.width, "height": photo.height,
                            "taken_at": photo.taken_at}, timings=photo.timings)
    else:
        try:
            clip = audio.check_and_clean_audio(
                source, workdir, audio.AudioLimits(max_seconds=settings.media_audio_max_seconds))
        except UnsupportedMediaType:
            if photos.is_photo(source):
                raise _wrong_kind("a photo", "photo") from None
            raise
        result = Processed("audio", clip.format, clip.files,
                           {"duration_s": clip.duration_s, "codec": clip.codec,
                            "channels": clip.channels, "sample_rate": clip.sample_rate},
                           timings=clip.timings)
    started = time.perf_counter()
    for f in result.files:
        if f.path in result.digests:
            continue
        if f.path == prepared.upload.path:  # kept as sent: fsynced and hashed on arrival
            result.digests[f.path] = (prepared.upload.sha256, prepared.upload.size)
            continue
        fsync_file(f.path)
        result.digests[f.path] = (file_sha256(f.path), f.path.stat().st_size)
    result.timings["checksum"] = time.perf_counter() - started
    return result


def commit(ctx: Context, settings: Settings, session: CaptureSession, prepared: Prepared,
           processed: Processed, store: MediaStore) -> tuple[EntryOut, bool]:
    """Rows, blobs and the audit event, all or nothing (see the module's docstring)."""
    db, data = ctx.db, prepared.data
    keys = [processed.digests[f.path][0] for f in processed.files]
    created: list[str] = []
    try:
        media.lock_blobs(db, keys)
        stored = _stored_media(ctx, data.client_id)
        if stored is not None:  # another request stored it while we were processing
            return _answer_stored(ctx, session, stored, prepared.fingerprint), False
        allowed_by = capture.consent_at(ctx, settings, session.child_id, data.kind,
                                        data.captured_at, received_at=prepared.received_at)
        creator = ctx.actor.user.id if ctx.actor.user else None
        if prepared.target_entry_id is not None:
            entry = db.get(VoiceEntry, prepared.target_entry_id)
        else:
            entry = VoiceEntry(client_id=data.client_id, child_id=session.child_id,
                               session_id=session.id, kind=data.kind, source=data.source,
                               captured_at=data.captured_at, received_at=prepared.received_at,
                               prompt=data.prompt, topic=data.topic,
                               consent_id=allowed_by.id if allowed_by else None, content={},
                               created_by=creator, fingerprint=prepared.fingerprint)
        row = Media(client_id=data.client_id, entry_id=entry.id, child_id=session.child_id,
                    session_id=session.id, consent_id=allowed_by.id if allowed_by else None,
                    kind=data.kind, format=processed.format, caption=data.caption,
                    upload_sha256=prepared.upload.sha256, upload_bytes=prepared.upload.size,
                    fingerprint=prepared.fingerprint, created_by=creator,
                    **processed.facts)
        try:
            with db.begin_nested():
                if prepared.target_entry_id is None:
                    db.add(entry)
                    db.flush()
                db.add(row)
                db.flush()
        except IntegrityError:
            # Another request took this client_id a moment ago (PostgreSQL waits for it
            # to commit first): answer its entry, or a conflict if it was something else.
            stored = _stored_media(ctx, data.client_id)
            if stored is None:
                raise Conflict("This client_id was already used for a different entry. "
                               "Make a new client_id for each new photo or recording.",
                               slug="client-id-reused") from None
            return _answer_stored(ctx, session, stored, prepared.fingerprint), False
        for f in processed.files:
            key, size = processed.digests[f.path]
            db.add(MediaFile(media_id=row.id, role=f.role, sha256=key, bytes=size,
                             content_type=f.content_type, width=f.width, height=f.height))
        db.flush()
        placed: set[Path] = set()
        for f in processed.files:
            if f.path in placed:
                continue
            placed.add(f.path)
            key = processed.digests[f.path][0]
            if store.put(key, f.path, content_type=f.content_type):
                created.append(key)
        audit.record(ctx, "media.create", child_id=session.child_id, object_type="media",
                     object_id=row.id)
        db.commit()
    except BaseException:
        db.rollback()
        if created:
            media.delete_if_unreferenced(db, store, created)
        raise
    return capture.entries_out(
        db, [entry], child_mode=ctx.actor.capture_session is not None)[0], True


# --- the whole upload ------------------------------------------------------------------

async def add_media(ctx: Context, session: CaptureSession, form: ReceivedForm, *,
                    settings: Settings, store: MediaStore,
                    jobs: MediaJobs) -> tuple[EntryOut, bool, dict[str, float]]:
    """Returns the entry, whether this call created it, and the time each step took."""
    data = parse_fields(form.fields)
    access.child_mode_entry(ctx.actor, data.source, None)
    if form.file is None:
        raise Invalid("Send the photo or recording in a multipart part named 'file'.",
                      field=["body", "file"])
    prepared = await to_thread.run_sync(prepare, ctx, session, data, form.file, settings)
    if prepared.replay is not None:
        return prepared.replay, False, {}
    workdir = Path(tempfile.mkdtemp(dir=staging_dir(settings.media_root)))
    try:
        started = time.perf_counter()
        processed: Processed = await jobs.run(process, prepared, workdir, settings)
        processed.timings["job"] = time.perf_counter() - started
        started = time.perf_counter()
        entry, created = await to_thread.run_sync(commit, ctx, settings, session, prepared,
                                                  processed, store)
        processed.timings["commit"] = time.perf_counter() - started
        return entry, created, processed.timings
    finally:
        await to_thread.run_sync(functools.partial(shutil.rmtree, workdir,
                                                   ignore_errors=True))
