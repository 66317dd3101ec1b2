"""Resumable uploads: the tus 1.0 protocol (core, creation, checksum, expiration,
termination) for photos and recordings from an enrolled tablet.

How the bytes are kept, so that nothing is lost, nothing lands twice, and nothing needs a
lock in this process:

- an upload's bytes are immutable chunks kept in the media store beside the blobs
  (`uploads/<upload id>/<chunk>`: files under the media root, or objects in the bucket), so
  any API process can take the next PATCH: the processes share only the database and the
  store;
- a PATCH streams into a part file of its own in this request's staging area, checks it
  (checksum, size), puts it into the store under a chunk name no other PATCH can use, and
  only then asks the database to accept it: one conditional UPDATE that moves `offset` from
  the value the PATCH started at and appends the chunk to `chunks`. A PATCH that loses that
  race removes its chunk; a server killed before it leaves a chunk no row names, which
  cleanup removes; the offset never moves past bytes that are not safely stored;
- when the last byte is accepted, the chunks are joined in the request's staging area and
  the file goes through exactly what a direct upload goes through (`media_capture.add_media`:
  sniffing, EXIF stripping, probing, consent, idempotency by client_id). If the server dies
  in between, the next PATCH (or an empty one at the final offset) finishes the job, and a
  second finish is only a resend of the same media.
- unfinished uploads expire; their bytes are removed when they are next asked for, and by
  the cleanup the service runs itself (and `childvoice cleanup`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from anyio import to_thread
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from starlette.requests import ClientDisconnect

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Context
from app.core.db import new_session
from app.core.errors import Conflict, Invalid, NotFound, PayloadTooLarge, Problem
from app.core.multipart import ReceivedFile, ReceivedForm, byte_count
from app.models.capture import CaptureSession, EntryOut
from app.models.sync import Device, SyncReceipt
from app.models.upload import IncompleteUpload, Upload
from app.services import access, audit
from app.services.media import capture as media_capture
from app.storage import MediaStore, make_store, staging_dir

log = logging.getLogger("childvoice.uploads")

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,checksum,expiration,termination"
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
UPLOAD_NOT_FOUND = "No upload with this id is open for this device (it may have expired)."
WRITE_BYTES = 1024 * 1024
# A chunk no row names is younger than this only while its PATCH is between putting it
# into the store and the UPDATE that accepts it (milliseconds): cleanup leaves it that long.
PART_GRACE_SECONDS = 120

REQUIRED_FIELDS = ("client_id", "kind", "captured_at", "source", "filename")
MEDIA_FIELDS = ("kind", "client_id", "captured_at", "source", "prompt", "topic",
                "entry_client_id", "caption", "keep_taken_at")
SESSION_FIELDS = ("session_id", "session_client_id")


def tus_headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, **extra}


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


class ChecksumMismatch(Problem):
    status, slug, title = 460, "checksum-mismatch", "Checksum mismatch"


def _remove_bytes(settings: Settings, upload_id: uuid.UUID) -> None:
    make_store(settings).delete_parts(upload_id.hex)


# --- headers -------------------------------------------------------------------------

def parse_metadata(header: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64(value)` pairs (tus 1.0 creation)."""
    fields: dict[str, str] = {}
    for pair in (header or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        try:
            value = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Problem(f"Upload-Metadata: the value of '{key}' is not base64 of UTF-8 "
                          "text.", status=400, slug="bad-metadata", title="Bad metadata",
                          headers=tus_headers()) from None
        if "\x00" in value:  # no database text column can hold it
            raise Problem(f"Upload-Metadata: the value of '{key}' contains a NUL character "
                          "(\\u0000).", status=400,
                          slug="bad-metadata", title="Bad metadata", headers=tus_headers())
        if not key or key in fields:
            raise Problem("Upload-Metadata: each key once, as `key base64value`.", status=400,
                          slug="bad-metadata", title="Bad metadata", headers=tus_headers())
        fields[key] = value
    return fields


def parse_checksum(header: str | None) -> tuple[str, bytes] | None:
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise Problem(f"Upload-Checksum: '{algorithm}' is not supported; use sha1 or sha256.",
                      status=400, slug="checksum-unsupported", title="Unsupported checksum",
                      headers=tus_headers(**{"Tus-Checksum-Algorithm": ",".join(CHECKSUMS)}))
    try:
        return algorithm, base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise Problem("Upload-Checksum: the digest is not base64.", status=400,
                      slug="checksum-unreadable", title="Unreadable checksum",
                      headers=tus_headers()) from None


def _int_header(value: str | None, name: str) -> int:
    count = byte_count(value)
    if count is None:
        raise Problem(f"Send {name} as a whole number of bytes, in the digits 0-9.",
                      status=400, slug="bad-header", title=f"Missing or bad {name}",
                      headers=tus_headers())
    return count


# --- finding an upload ---------------------------------------------------------------

def _session_named(ctx: Context, fields: dict[str, str]) -> CaptureSession:
    named = [k for k in SESSION_FIELDS if fields.get(k)]
    if len(named) != 1:
        raise Invalid("Upload-Metadata names the session by exactly one of session_id (started "
                      "online) or session_client_id (started offline).",
                      field=["header", "Upload-Metadata"], headers=tus_headers())
    try:
        ref = uuid.UUID(fields[named[0]])
    except ValueError:
        raise Invalid(f"Upload-Metadata: {named[0]} is not a UUID.",
                      field=["header", "Upload-Metadata", named[0]],
                      headers=tus_headers()) from None
    if named[0] == "session_id":
        return access.session_for(ctx, ref, access.Need.write)
    found = ctx.db.exec(select(CaptureSession).where(CaptureSession.client_id == ref)).first()
    if found is None:
        raise Conflict("No session with this session_client_id has reached the server yet: "
                       "sync its `session` item first, then create the upload.",
                       slug="session-unknown", title="Session not received yet", retry=True,
                       headers=tus_headers())
    return access.session_for(ctx, found.id, access.Need.write)


def _live(ctx: Context, settings: Settings, device: Device, upload_id: uuid.UUID) -> Upload:
    """The device's upload, while it may still be used; an expired one loses its bytes now."""
    upload = ctx.db.get(Upload, upload_id)
    if upload is None or upload.device_id != device.id or upload.terminated_at is not None \
            or upload.expired_at is not None:
        raise NotFound(UPLOAD_NOT_FOUND, headers=tus_headers())
    if upload.entry_id is None and upload.problem is None and upload.expires_at <= utcnow():
        _expire(ctx, settings, upload)
        raise NotFound("This upload expired before it was finished; its bytes are gone. "
                       "Create a new upload and send the file again.", slug="upload-expired",
                       title="Upload expired", headers=tus_headers())
    return upload


def _expire(ctx: Context, settings: Settings, upload: Upload) -> None:
    _remove_bytes(settings, upload.id)
    ctx.db.exec(update(Upload).where(Upload.id == upload.id, Upload.expired_at.is_(None))
                .values(expired_at=utcnow()))
    ctx.db.commit()


# --- creation, HEAD, DELETE ------------------------------------------------------------

def create(ctx: Context, settings: Settings, device_key: str | None, length: str | None,
           metadata: str | None) -> Upload:
    device = access.tablet_device(ctx, None, device_key)
    size = _int_header(length, "Upload-Length")
    fields = parse_metadata(metadata)
    missing = [k for k in REQUIRED_FIELDS if not fields.get(k)]
    if missing:
        raise Invalid(f"Upload-Metadata is missing: {', '.join(missing)}.",
                      field=["header", "Upload-Metadata"], headers=tus_headers())
    session = _session_named(ctx, fields)
    media_fields = {k: v for k, v in fields.items() if k in MEDIA_FIELDS}
    data = media_capture.parse_fields(media_fields)  # the direct upload's own field rules
    limit = media_capture.limit_for(settings, data.kind)
    if size > limit:
        problem = media_capture.too_large(limit)
        problem.headers = tus_headers(**{"Tus-Max-Size": str(limit)})
        raise problem
    if size == 0:
        raise Invalid("Upload-Length is 0: send the photo or recording itself.",
                      field=["header", "Upload-Length"], headers=tus_headers())
    now = utcnow()
    upload = Upload(device_id=device.id, user_id=ctx.user.id, session_id=session.id,
                    child_id=session.child_id, client_id=data.client_id, length=size,
                    fields=media_fields, filename=fields["filename"][:255], created_at=now,
                    expires_at=now + timedelta(hours=settings.upload_expiry_hours))
    ctx.db.add(upload)
    ctx.db.flush()
    device.last_seen_at = max(device.last_seen_at, now)
    audit.record(ctx, "upload.create", child_id=session.child_id, object_type="upload",
                 object_id=upload.id)
    ctx.db.commit()
    return upload


def head(ctx: Context, settings: Settings, device_key: str | None,
         upload_id: uuid.UUID) -> Upload:
    device = access.tablet_device(ctx, None, device_key)
    upload = _live(ctx, settings, device, upload_id)
    ctx.db.commit()
    return upload


def terminate(ctx: Context, settings: Settings, device_key: str | None,
              upload_id: uuid.UUID) -> None:
    device = access.tablet_device(ctx, None, device_key)
    upload = _live(ctx, settings, device, upload_id)
    if upload.entry_id is None:
        upload.terminated_at = utcnow()
        ctx.db.add(upload)
        audit.record(ctx, "upload.terminate", child_id=upload.child_id, object_type="upload",
                     object_id=upload.id)
    ctx.db.commit()
    _remove_bytes(settings, upload.id)


# --- PATCH ---------------------------------------------------------------------------

class _Part:
    """A PATCH's bytes on their way to disk, with the digests asked for."""

    def __init__(self, directory: Path, algorithm: str | None) -> None:
        self.token = secrets.token_hex(8)
        self.path = directory / f"part-{self.token}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._digest = CHECKSUMS[algorithm]() if algorithm else None
        self.size = 0

    def write(self, data: bytes) -> None:
        if self._digest is not None:
            self._digest.update(data)
        os.write(self._fd, data)
        self.size += len(data)

    def close(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)

    def digest(self) -> bytes | None:
        return self._digest.digest() if self._digest else None

    def discard(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass
        self.path.unlink(missing_ok=True)


def start_patch(ctx: Context, settings: Settings, device_key: str | None, upload_id: uuid.UUID,
                offset_header: str | None, content_type: str | None) -> Upload:
    """Before any byte is read: the device's live upload, at the offset the client says.
    Ends the transaction, so nothing is held while the body streams in."""
    device = access.tablet_device(ctx, None, device_key)
    upload = _live(ctx, settings, device, upload_id)
    ctx.db.commit()
    if (content_type or "").split(";")[0].strip().lower() != "application/offset+octet-stream":
        raise Problem("A PATCH carries Content-Type: application/offset+octet-stream.",
                      status=415, slug="unsupported-media-type",
                      title="Unsupported media type", headers=tus_headers())
    offset = _int_header(offset_header, "Upload-Offset")
    if offset != upload.offset:
        raise Conflict(f"Upload-Offset is {offset} but the server holds {upload.offset} bytes; "
                       "HEAD the upload and send from there.", slug="offset-mismatch",
                       title="Offset mismatch", offset=upload.offset,
                       headers=tus_headers(**{"Upload-Offset": str(upload.offset)}))
    return upload


async def receive(settings: Settings, upload: Upload, body: AsyncIterator[bytes],
                  checksum: tuple[str, bytes] | None) -> _Part | None:
    """Stream the body into a part file of its own. Returns it, checked, or None when the
    client went away (then what arrived is kept only when there was no checksum to check)."""
    part = await to_thread.run_sync(_Part, staging_dir(settings.media_root),
                                    checksum[0] if checksum else None)
    room = upload.length - upload.offset
    buffered: list[bytes] = []
    pending = 0
    try:
        try:
            async for chunk in body:
                if part.size + pending + len(chunk) > room:
                    raise PayloadTooLarge(f"This PATCH carries more than the {room} bytes "
                                          "the upload still expects.", headers=tus_headers())
                buffered.append(chunk)
                pending += len(chunk)
                if pending >= WRITE_BYTES:
                    data, buffered, pending = b"".join(buffered), [], 0
                    await to_thread.run_sync(part.write, data)
        except ClientDisconnect:
            if checksum is not None:
                # Unchecked bytes are worth nothing: the tablet resends from the offset.
                await to_thread.run_sync(part.discard)
                return None
            log.info("upload %s: client went away mid-PATCH; keeping what arrived", upload.id)
        if buffered:
            await to_thread.run_sync(part.write, b"".join(buffered))
        await to_thread.run_sync(part.close)
    except BaseException:
        await to_thread.run_sync(part.discard)
        raise
    if checksum is not None and part.digest() != checksum[1]:
        await to_thread.run_sync(part.discard)
        raise ChecksumMismatch(f"The {checksum[0]} of this PATCH's bytes does not match "
                               "Upload-Checksum; nothing of it was kept. Send it again from "
                               f"offset {upload.offset}.",
                               headers=tus_headers(**{"Upload-Offset": str(upload.offset)}))
    return part


def accept(ctx: Context, settings: Settings, upload_id: uuid.UUID, started_at: int,
           part: _Part) -> Upload:
    """Make the part a chunk of the upload: put into the store under its own chunk name
    first, then one conditional UPDATE moves the offset from where this PATCH started.
    Losing that race (another PATCH got there first) answers 409 and removes the chunk."""
    upload = ctx.db.exec(select(Upload).where(Upload.id == upload_id)
                         .execution_options(populate_existing=True)).one()
    if part.size == 0:
        part.path.unlink(missing_ok=True)
        ctx.db.commit()
        return upload
    chunk = f"chunk-{started_at:016d}-{part.token}"
    store = make_store(settings)
    store.put_part(upload_id.hex, chunk, part.path)
    moved = ctx.db.exec(
        update(Upload)
        .where(Upload.id == upload_id, Upload.offset == started_at,
               Upload.expired_at.is_(None), Upload.terminated_at.is_(None))
        .values(offset=started_at + part.size,
                chunks=[*upload.chunks, [started_at, part.size, chunk]],
                expires_at=utcnow() + timedelta(hours=settings.upload_expiry_hours))).rowcount
    ctx.db.commit()
    ctx.db.refresh(upload)
    if not moved:
        store.delete_parts(upload_id.hex, [chunk])
        raise Conflict("Another PATCH moved this upload's offset first; HEAD it and send "
                       "from there.", slug="offset-mismatch", title="Offset mismatch",
                       offset=upload.offset,
                       headers=tus_headers(**{"Upload-Offset": str(upload.offset)}))
    return upload


# --- finishing: the same checks and functions as the direct upload --------------------

def _assemble(settings: Settings, upload: Upload) -> Path:
    """Join the accepted chunks, in order, into one file in this request's staging area
    (the media checks read a local file)."""
    store = make_store(settings)
    target = staging_dir(settings.media_root) / f"tus-{upload.id.hex}-{secrets.token_hex(4)}"
    position = 0
    with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        for start, size, name in upload.chunks:
            if start != position:
                raise RuntimeError(f"upload {upload.id}: chunks are not contiguous")
            for data in store.read_part(upload.id.hex, name, WRITE_BYTES):
                out.write(data)
            position += size
        out.flush()
    if position != upload.length:
        target.unlink(missing_ok=True)
        raise RuntimeError(f"upload {upload.id}: chunks do not add up to its length")
    return target


async def finish(ctx: Context, settings: Settings, store: MediaStore,
                 jobs: media_capture.MediaJobs, upload: Upload) -> EntryOut:
    """The complete file becomes a media entry through `media_capture.add_media`, exactly
    as a direct upload would. A problem there (not a photo, no consent…) is kept on the
    upload and answered again to any later PATCH; the bytes go either way."""
    if upload.problem is not None:
        raise _stored_problem(upload)
    path = await to_thread.run_sync(_assemble, settings, upload)
    form = ReceivedForm(fields=dict(upload.fields),
                        file=await to_thread.run_sync(ReceivedFile.from_path, path,
                                                      upload.filename))
    try:
        session = await to_thread.run_sync(media_capture.authorise, ctx, upload.session_id)
        entry, _, _ = await media_capture.add_media(ctx, session, form, settings=settings,
                                                    store=store, jobs=jobs)
    except Problem as problem:
        await to_thread.run_sync(_keep_problem, ctx, settings, upload, problem)
        raise
    finally:
        await to_thread.run_sync(form.discard)
    await to_thread.run_sync(_finished, ctx, settings, upload, entry)
    return entry


def _stored_problem(upload: Upload) -> Problem:
    doc = dict(upload.problem or {})
    return Problem(doc.pop("detail", "This upload could not be stored."),
                   status=doc.pop("status", 422),
                   slug=doc.pop("type", "invalid").rsplit("/", 1)[-1],
                   title=doc.pop("title", "Upload refused"), headers=tus_headers(
                       **{"Upload-Offset": str(upload.offset)}), **doc)


def _keep_problem(ctx: Context, settings: Settings, upload: Upload, problem: Problem) -> None:
    ctx.db.rollback()
    if problem.status >= 500:
        return  # not the file's fault: the next PATCH tries again
    ctx.db.exec(update(Upload).where(Upload.id == upload.id, Upload.entry_id.is_(None))
                .values(problem=problem.document(), completed_at=utcnow()))
    ctx.db.commit()
    _remove_bytes(settings, upload.id)
    problem.headers = {**problem.headers, **tus_headers(**{"Upload-Offset": str(upload.offset)})}


def _finished(ctx: Context, settings: Settings, upload: Upload, entry: EntryOut) -> None:
    ctx.db.rollback()
    ctx.db.exec(update(Upload).where(Upload.id == upload.id)
                .values(entry_id=entry.id, completed_at=utcnow()))
    try:
        # The media's client_id is then held, as /sync/state tells the tablet.
        with ctx.db.begin_nested():
            ctx.db.add(SyncReceipt(client_id=upload.client_id, device_id=upload.device_id,
                                   item_type="media", child_id=upload.child_id,
                                   object_id=entry.id, tablet_at=entry.captured_at,
                                   received_at=utcnow()))
    except IntegrityError:
        pass  # already held (a finish run twice)
    ctx.db.commit()
    _remove_bytes(settings, upload.id)


# --- what the tablet still owes, and cleanup ------------------------------------------

def incomplete(ctx: Context, device: Device, base_path: str) -> list[IncompleteUpload]:
    now = utcnow()
    rows = ctx.db.exec(select(Upload).where(
        Upload.device_id == device.id, Upload.entry_id.is_(None), Upload.problem.is_(None),
        Upload.expired_at.is_(None), Upload.terminated_at.is_(None), Upload.expires_at > now)
        .order_by(Upload.created_at, Upload.id))
    return [IncompleteUpload(upload_url=f"{base_path}/{u.id}", client_id=u.client_id,
                             offset=u.offset, length=u.length, expires_at=u.expires_at)
            for u in rows]


def cleanup(engine: Engine, settings: Settings) -> dict[str, int]:
    """Expire unfinished uploads past their time and remove their bytes; remove the bytes
    of finished, refused or terminated uploads; and what a crash left: chunks no row names
    (older than PART_GRACE_SECONDS, so a PATCH between its put and its UPDATE keeps its
    own) and the chunks of uploads the database does not know."""
    store = make_store(settings)
    counts = {"expired": 0, "removed": 0}
    with new_session(engine) as db:
        now = utcnow()
        expired = db.exec(select(Upload.id).where(
            Upload.entry_id.is_(None), Upload.problem.is_(None), Upload.expired_at.is_(None),
            Upload.terminated_at.is_(None), Upload.expires_at <= now)).all()
        for upload_id in expired:
            db.exec(update(Upload).where(Upload.id == upload_id, Upload.expired_at.is_(None))
                    .values(expired_at=now))
        db.commit()
        for upload_id in expired:
            _remove_bytes(settings, upload_id)
        counts["expired"] = len(expired)
        cutoff = time.time() - PART_GRACE_SECONDS
        for name, newest in list(store.part_uploads()):
            try:
                upload_id = uuid.UUID(name)
            except ValueError:
                upload_id = None
            upload = db.get(Upload, upload_id) if upload_id else None
            live = upload is not None and upload.entry_id is None and \
                upload.problem is None and upload.expired_at is None and \
                upload.terminated_at is None
            if not live:
                if upload is not None or newest < cutoff:
                    store.delete_parts(name)
                    counts["removed"] += 1
                continue
            named = {chunk for _, _, chunk in upload.chunks}
            stray = [part for part, written in store.parts(name)
                     if part not in named and written < cutoff]
            if stray:
                store.delete_parts(name, stray)
                counts["removed"] += len(stray)
        db.commit()
    return counts
