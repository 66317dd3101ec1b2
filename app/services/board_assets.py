"""The bytes boards carry: every imported image and sound is checked and stored here.

`store_board_media` is the ONE door: import (data: URIs and package members) calls it, and
nothing else writes a board's bytes. It sniffs the type from the bytes (the declared type
and file name are never trusted), bounds size and pixel count before decoding, rewrites
images without their metadata, and stores the result content-addressed under the media
root (`objects/ab/cd/<sha256>`), written in the media root's own staging area and moved
into place atomically.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core.config import Settings
from app.models.board import BoardAsset

ACCEPTED_IMAGES = "PNG, JPEG, WebP or GIF"
_IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp",
                  "GIF": "image/gif"}
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp",
               "image/gif": "gif", "audio/mpeg": "mp3", "audio/wav": "wav",
               "audio/ogg": "ogg", "audio/mp4": "m4a", "audio/webm": "webm"}


class AssetRefused(Exception):
    """Bytes that are not an acceptable image or sound; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Checked:
    data: bytes
    content_type: str
    width: int | None = None
    height: int | None = None


def extension_for(content_type: str) -> str:
    return _EXTENSIONS.get(content_type, "bin")


def _check_image(data: bytes, settings: Settings) -> _Checked:
    try:
        return _read_image(data, settings)
    except AssetRefused:
        raise
    except Exception:  # crafted files make decoders raise all sorts (struct.error, …)
        raise AssetRefused("could not be read as an image") from None


def _read_image(data: bytes, settings: Settings) -> _Checked:
    if len(data) > settings.board_image_max_bytes:
        raise AssetRefused(f"is {len(data):,} bytes; the limit is "
                           f"{settings.board_image_max_bytes:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(_IMAGE_FORMATS))
    except Image.DecompressionBombError:
        raise AssetRefused("declares too many pixels") from None
    except UnidentifiedImageError:
        head = data[:256].lstrip().lower()
        what = "an SVG drawing" if head.startswith(b"<?xml") or b"<svg" in head \
            else "not an image"
        raise AssetRefused(f"is {what}; images must be {ACCEPTED_IMAGES}") from None
    except (OSError, SyntaxError, ValueError):
        raise AssetRefused("could not be read as an image") from None
    with image:
        fmt = image.format
        width, height = image.size
        if width < 1 or height < 1 or width * height > settings.board_image_max_pixels:
            raise AssetRefused(f"declares {width} x {height} pixels; the limit is "
                               f"{settings.board_image_max_pixels:,} pixels")
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            raise AssetRefused("is animated; board images must be still")
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)  # turned the way the camera meant
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            raise AssetRefused("is damaged or cut short") from None
        image = upright
        width, height = image.size
        # Rewritten from its pixels: no EXIF, XMP, comments or text chunks survive (only
        # which palette entry is transparent, which is part of the picture).
        image.info = {k: v for k, v in image.info.items() if k == "transparency"}
        out = io.BytesIO()
        if fmt == "JPEG":
            image.convert("RGB").save(out, "JPEG", quality=90)
        elif fmt == "WEBP":
            image.save(out, "WEBP", quality=90)
        elif fmt == "GIF":
            image.save(out, "GIF")
        else:
            fmt = "PNG"
            image.save(out, "PNG", optimize=True)
    return _Checked(out.getvalue(), _IMAGE_FORMATS[fmt], width, height)


def _sniff_sound(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:4] == b"OggS":
        return "audio/ogg"
    if data[4:8] == b"ftyp":
        return "audio/mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "audio/webm"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def _check_sound(data: bytes, settings: Settings) -> _Checked:
    if len(data) > settings.board_sound_max_bytes:
        raise AssetRefused(f"is {len(data):,} bytes; the limit is "
                           f"{settings.board_sound_max_bytes:,}")
    content_type = _sniff_sound(data)
    if content_type is None:
        raise AssetRefused("is not a recording (MP3, WAV, Ogg, M4A or WebM)")
    return _Checked(data, content_type)


def blob_path(media_root: Path, sha256: str) -> Path:
    return media_root / "objects" / sha256[:2] / sha256[2:4] / sha256


def _put_blob(media_root: Path, sha256: str, data: bytes) -> None:
    target = blob_path(media_root, sha256)
    if target.is_file():
        return
    staging = media_root / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    part = staging / f"{uuid.uuid4().hex}.part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(part, target)  # never replaces: the first writer of a key wins
        except FileExistsError:
            pass
    finally:
        part.unlink(missing_ok=True)


def store_board_media(db: Session, settings: Settings, kind: str, data: bytes,
                      declared_type: str | None = None) -> BoardAsset:
    """Check `data` as an image or sound (`kind`), store it, and answer its asset row.

    Raises AssetRefused with the reason when the bytes are not acceptable."""
    del declared_type  # never trusted; kept in the signature for the caller's record
    checked = _check_image(data, settings) if kind == "image" else _check_sound(data, settings)
    sha256 = hashlib.sha256(checked.data).hexdigest()
    _put_blob(settings.media_root, sha256, checked.data)
    found = db.exec(select(BoardAsset).where(BoardAsset.sha256 == sha256)).first()
    if found is not None:
        return found
    asset = BoardAsset(sha256=sha256, kind=kind, content_type=checked.content_type,
                       bytes=len(checked.data), width=checked.width, height=checked.height)
    try:
        with db.begin_nested():
            db.add(asset)
    except IntegrityError:  # the same bytes stored by another request just now
        return db.exec(select(BoardAsset).where(BoardAsset.sha256 == sha256)).one()
    return asset


def asset_by_sha(db: Session, sha256: str) -> BoardAsset | None:
    return db.exec(select(BoardAsset).where(BoardAsset.sha256 == sha256)).first()


def read_blob(settings: Settings, sha256: str) -> bytes:
    return blob_path(settings.media_root, sha256).read_bytes()
