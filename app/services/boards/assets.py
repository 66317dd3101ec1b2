"""The bytes boards carry: every imported image and sound, every starter picture and every
photo for a personal board is checked and stored here.

`clean_board_media` (then `store_clean_asset`) is the ONE door, and it goes through the media pipeline: the same
`photos.check_and_clean_photo` and `audio.check_and_clean_audio` that uploaded photos and
recordings go through (type sniffed from the bytes, never the name or declared type;
pixel count checked from the header before decoding; bombs, SVG, GIF, web pages and
damaged files refused; EXIF, location and container metadata removed), and the same
content-addressed `MediaStore`, under the same blob lock. A board names what was stored
by its SHA-256 (a `BoardAsset` row), which the media sweeper counts as a reference.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core.config import Settings
from app.core.errors import Problem
from app.models.board import BoardAsset
from app.services.media import audio, photos
from app.services.media.records import lock_blobs
from app.storage import MediaStore, staging_dir
from app.storage.base import file_sha256, fsync_file

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp",
               "image/heic": "heic", "audio/mpeg": "mp3", "audio/wav": "wav",
               "audio/ogg": "ogg", "audio/mp4": "m4a", "audio/webm": "webm"}
# Recordings every tablet browser plays as they are (Safari plays no Opus or Vorbis):
# others are kept as the pipeline's AAC playback copy.
_PLAYABLE = {"audio/mpeg", "audio/mp4", "audio/wav"}


class AssetRefused(Exception):
    """Bytes that are not an acceptable image or sound; `reason` says why, and `problem`
    is the media pipeline's own answer (415 or 422) for callers that pass it on."""

    def __init__(self, reason: str, problem: Problem | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problem = problem


@dataclass
class _Clean:
    path: Path
    content_type: str
    width: int | None = None
    height: int | None = None


def extension_for(content_type: str) -> str:
    return _EXTENSIONS.get(content_type, "bin")


def _clean(kind: str, source: Path, workdir: Path, settings: Settings,
           max_pixels: int) -> _Clean:
    if kind == "image":
        limits = photos.PhotoLimits(max_pixels=max_pixels,
                                    thumbnail_px=settings.media_thumbnail_px,
                                    jpeg_quality=settings.media_jpeg_quality)
        photo = photos.check_and_clean_photo(source, workdir, limits)
        files = {f.role: f for f in photo.files}
        chosen = files.get("display") or files["stored"]  # HEIC: the rendition browsers show
        return _Clean(chosen.path, chosen.content_type, chosen.width, chosen.height)
    limits = audio.AudioLimits(max_seconds=min(settings.board_sound_max_seconds,
                                               settings.media_audio_max_seconds))
    clip = audio.check_and_clean_audio(source, workdir, limits)
    files = {f.role: f for f in clip.files}
    chosen = files["stored"] if files["stored"].content_type in _PLAYABLE else files["playback"]
    return _Clean(chosen.path, chosen.content_type)


@dataclass
class CleanAsset:
    """Checked and cleaned bytes, ready to store: in a work folder the caller removes."""

    kind: str
    path: Path
    sha256: str
    bytes: int
    content_type: str
    width: int | None = None
    height: int | None = None


def clean_board_media(settings: Settings, kind: str, data: bytes | Path, workdir: Path, *,
                      max_pixels: int | None = None) -> CleanAsset:
    """Check `data` (bytes, or a file in the staging area) as an image or sound (`kind`)
    through the media pipeline, and leave the clean copy in `workdir`. No database: the
    slow part (decoding) never holds a connection.

    Raises AssetRefused, with the reason and the pipeline's problem, when the bytes are not
    acceptable."""
    limit = settings.board_image_max_bytes if kind == "image" else settings.board_sound_max_bytes
    size = len(data) if isinstance(data, bytes) else data.stat().st_size
    if size > limit and isinstance(data, bytes):
        raise AssetRefused(f"is {size:,} bytes; the limit is {limit:,}")
    own = workdir / uuid.uuid4().hex
    own.mkdir()
    source = data if isinstance(data, Path) else own / "source"
    if isinstance(data, bytes):
        source.write_bytes(data)
    try:
        clean = _clean(kind, source, own, settings,
                       max_pixels or settings.board_image_max_pixels)
    except Problem as exc:
        raise AssetRefused(f"is refused: {exc.detail}", exc) from None
    if clean.path == source and not isinstance(data, bytes):
        kept = own / "kept"  # the store consumes what it is given, not the caller's
        shutil.copyfile(source, kept)
        clean.path = kept
    fsync_file(clean.path)
    return CleanAsset(kind=kind, path=clean.path, sha256=file_sha256(clean.path),
                      bytes=clean.path.stat().st_size, content_type=clean.content_type,
                      width=clean.width, height=clean.height)


def store_clean_asset(db: Session, store: MediaStore, clean: CleanAsset) -> BoardAsset:
    """Store cleaned bytes and answer their asset row (the caller commits, or rolls back:
    the blob is then swept as unnamed)."""
    lock_blobs(db, [clean.sha256])  # no sweep may delete it before this transaction ends
    store.put(clean.sha256, clean.path, content_type=clean.content_type)
    found = db.exec(select(BoardAsset).where(BoardAsset.sha256 == clean.sha256)).first()
    if found is not None:
        return found
    asset = BoardAsset(sha256=clean.sha256, kind=clean.kind, content_type=clean.content_type,
                       bytes=clean.bytes, width=clean.width, height=clean.height)
    try:
        with db.begin_nested():
            db.add(asset)
    except IntegrityError:  # the same bytes stored by another request just now
        return db.exec(select(BoardAsset).where(BoardAsset.sha256 == clean.sha256)).one()
    return asset


def store_board_media(db: Session, settings: Settings, store: MediaStore, kind: str,
                      data: bytes | Path, *, max_pixels: int | None = None) -> BoardAsset:
    """Check, clean and store one image or sound (see `clean_board_media`), decoding it
    before the first statement so the connection is taken only to write."""
    workdir = staging_dir(settings.media_root) / f"board-{uuid.uuid4().hex}"
    workdir.mkdir()
    try:
        clean = clean_board_media(settings, kind, data, workdir, max_pixels=max_pixels)
        return store_clean_asset(db, store, clean)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def asset_by_sha(db: Session, sha256: str) -> BoardAsset | None:
    return db.exec(select(BoardAsset).where(BoardAsset.sha256 == sha256)).first()


def read_blob(store: MediaStore, sha256: str) -> bytes:
    return b"".join(store.open_range(sha256))
