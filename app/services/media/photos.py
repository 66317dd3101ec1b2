"""Check and clean a photo: the one function every photo path calls (uploads, board import,
resumable uploads): `check_and_clean_photo(source, workdir, limits)`.

- The type is sniffed from the bytes by Pillow, limited to JPEG, PNG, WebP and HEIC/HEIF;
  the file name and the declared type are never looked at.
- The declared pixel count is checked from the header before any pixel is decoded.
- The EXIF orientation is applied; the stored copy carries no EXIF, GPS, XMP, maker notes
  or comments (only the colour profile, so colours stay right).
- A thumbnail is made cheaply from the pixels already decoded (box reduce, then Lanczos);
  `draft_thumbnail` uses JPEG draft mode for callers that need only a thumbnail.
- HEIC/HEIF is kept as a clean HEIC and also gets a JPEG (or PNG, with transparency)
  rendition that every browser shows.

No database, no HTTP: it reads one local file and writes new ones into `workdir`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from app.core.errors import Invalid, UnsupportedMediaType

pillow_heif.register_heif_opener()

ACCEPTED_PHOTOS = "JPEG, PNG, WebP or HEIC/HEIF"
_FORMATS = ["JPEG", "PNG", "WEBP", "HEIF"]
_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
                  "HEIF": "image/heic"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}

_EXIF_IFD = 0x8769
_TAG_DATETIME = 0x0132
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_OFFSET_TIME = 0x9010
_TAG_OFFSET_TIME_ORIGINAL = 0x9011


@dataclass(frozen=True)
class PhotoLimits:
    max_pixels: int = 50_000_000
    thumbnail_px: int = 320
    jpeg_quality: int = 90


@dataclass
class CleanFile:
    """One file made from an upload, ready to be stored."""

    role: str            # stored | display | thumbnail | playback
    path: Path
    content_type: str
    width: int | None = None
    height: int | None = None


@dataclass
class CleanPhoto:
    format: str          # jpeg | png | webp | heif: what the bytes are
    width: int           # upright
    height: int
    taken_at: datetime | None
    files: list[CleanFile] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _refuse_unknown(source: Path) -> None:
    head = source.open("rb").read(512)
    lowered = head.lstrip().lower()
    if head.startswith((b"GIF87a", b"GIF89a")):
        what = "GIF images (still or animated)"
    elif lowered.startswith(b"<?xml") or b"<svg" in lowered:
        what = "SVG drawings"
    elif lowered.startswith((b"<!doctype html", b"<html")) or b"<script" in lowered:
        what = "web pages"
    else:
        what = "files of this kind"
    raise UnsupportedMediaType(f"This is not a photo we can take: {what} are not accepted. "
                               f"Send a {ACCEPTED_PHOTOS} photo.", slug="unsupported-photo",
                               title="Not an accepted photo", accepted=_FORMATS)


def is_photo(source: Path) -> bool:
    """Whether the bytes are a picture of an accepted format (its header only)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source, formats=_FORMATS):
                return True
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError,
            ValueError):
        return False


def _open(source: Path, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source, formats=_FORMATS)
    except Image.DecompressionBombError:
        raise _too_many_pixels(max_pixels) from None
    except UnidentifiedImageError:
        _refuse_unknown(source)
        raise  # unreachable: _refuse_unknown always raises
    except (OSError, SyntaxError, ValueError):
        raise _unreadable() from None
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise _unreadable()
    if width * height > max_pixels:
        image.close()
        raise _too_many_pixels(max_pixels, width, height)
    if image.format not in _CONTENT_TYPES and image.format != "MPO":  # pragma: no cover
        image.close()
        _refuse_unknown(source)
    if getattr(image, "n_frames", 1) > 1 and image.format not in ("HEIF", "MPO"):
        image.close()
        raise UnsupportedMediaType("Animated images are not accepted as photos. Send a single "
                                   f"{ACCEPTED_PHOTOS} photo.", slug="unsupported-photo",
                                   title="Not an accepted photo", accepted=_FORMATS)
    return image


def _too_many_pixels(limit: int, width: int | None = None,
                     height: int | None = None) -> Invalid:
    size = f" ({width} x {height})" if width else ""
    return Invalid(f"This image declares too many pixels{size}; the limit is "
                   f"{limit:,} pixels. It was refused before decoding.",
                   slug="image-too-large", title="Image too large", max_pixels=limit)


def _unreadable() -> Invalid:
    return Invalid(f"The photo could not be read: it may be cut short or damaged. Send a "
                   f"complete {ACCEPTED_PHOTOS} photo.", slug="unreadable-photo",
                   title="Unreadable photo")


def _taken_at(image: Image.Image, tz_hint: timezone | None) -> datetime | None:
    """When the photo was taken, from EXIF, as UTC. EXIF times have no zone unless an
    OffsetTime tag says so; otherwise the tablet's own offset (tz_hint) is assumed."""
    try:
        exif = image.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
        raw = sub.get(_TAG_DATETIME_ORIGINAL) or exif.get(_TAG_DATETIME)
        offset = sub.get(_TAG_OFFSET_TIME_ORIGINAL) or sub.get(_TAG_OFFSET_TIME)
        if not raw:
            return None
        when = datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
        tz = tz_hint
        if offset:
            sign = -1 if str(offset).startswith("-") else 1
            hours, minutes = str(offset).strip("+-\x00 ").split(":")
            tz = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
        if tz is None:
            return None
        return when.replace(tzinfo=tz).astimezone(timezone.utc)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def _normalise_mode(image: Image.Image, alpha: bool) -> Image.Image:
    if alpha:
        return image if image.mode == "RGBA" else image.convert("RGBA")
    if image.mode in ("RGB", "L"):
        return image
    return image.convert("RGB")


def _save(image: Image.Image, path: Path, fmt: str, *, icc: bytes | None,
          quality: int) -> None:
    """Save with exactly the metadata we choose: nothing the upload carried comes along."""
    image.info = {}
    extra: dict = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        image.save(path, "JPEG", quality=quality, **extra)
    elif fmt == "PNG":
        image.save(path, "PNG", compress_level=6, **extra)
    elif fmt == "WEBP":
        image.save(path, "WEBP", quality=quality, method=4, **extra)
    elif fmt == "HEIF":
        # pillow-heif falls back to the image's own EXIF, XMP and extra items, and saves
        # every image of a multi-image file: save one plain copy, with each one set empty.
        plain = image.copy()
        plain.info = {}
        plain.save(path, "HEIF", quality=quality, exif=None, xmp=None, metadata=[], **extra)
    else:  # pragma: no cover
        raise ValueError(fmt)


def _thumbnail(upright: Image.Image, limits: PhotoLimits) -> Image.Image:
    """From the pixels already decoded for the clean copy: a box reduce by a whole factor
    (cheap), then Lanczos to the final size. JPEG draft mode (decoding at 1/8 scale) was
    measured too, and costs more here: it is a second decode, and the full decode is
    needed anyway for the clean copy. Use draft mode where only a thumbnail is wanted."""
    box = (limits.thumbnail_px, limits.thumbnail_px)
    width, height = upright.size
    scale = min(box[0] / width, box[1] / height, 1.0)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return upright.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def draft_thumbnail(source: Path, thumbnail_px: int = 320) -> Image.Image:
    """A thumbnail of a JPEG without decoding it at full size (draft mode), for callers
    that need only the thumbnail (e.g. listing a board's images); EXIF orientation applied."""
    box = (thumbnail_px, thumbnail_px)
    with Image.open(source, formats=["JPEG"]) as small:
        small.draft("RGB" if small.mode != "L" else "L", box)
        thumb = ImageOps.exif_transpose(small)
        thumb.thumbnail(box, Image.Resampling.LANCZOS)
        return thumb


def check_and_clean_photo(source: Path, workdir: Path, limits: PhotoLimits = PhotoLimits(),
                          *, tz_hint: timezone | None = None,
                          keep_taken_at: bool = False) -> CleanPhoto:
    """Check the photo at `source` and write its clean files into `workdir`.

    Raises 415 (not an accepted type: SVG, GIF, web pages, anything unknown) or 422
    (unreadable or truncated, too many pixels). Returns what was learned and the files:
    `stored` (the clean copy, same format as sent), `display` (HEIC only: a rendition
    every browser shows) and `thumbnail`."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with _open(source, limits.max_pixels) as image:
        # MPO (a JPEG with extra pictures, as some cameras write) is kept as its first
        # picture, a plain JPEG.
        fmt = "JPEG" if image.format == "MPO" else image.format
        taken_at = _taken_at(image, tz_hint) if keep_taken_at else None
        icc = image.info.get("icc_profile")
        alpha = _has_alpha(image)
        try:
            image.load()
            # In place: an upright photo is not copied; a rotated one is rotated once.
            ImageOps.exif_transpose(image, in_place=True)
        except (OSError, SyntaxError, ValueError):
            raise _unreadable() from None
        upright = _normalise_mode(image, alpha)
        timings["decode"] = time.perf_counter() - started
        files = _write_files(upright, fmt, alpha, icc, workdir, limits, timings)
        width, height = upright.size
    return CleanPhoto(format=fmt.lower(), width=width, height=height, taken_at=taken_at,
                      files=files, timings=timings)


def _write_files(upright: Image.Image, fmt: str, alpha: bool, icc: bytes | None,
                 workdir: Path, limits: PhotoLimits,
                 timings: dict[str, float]) -> list[CleanFile]:
    files: list[CleanFile] = []
    started = time.perf_counter()
    stored_fmt = fmt
    stored = workdir / f"stored.{stored_fmt.lower()}"
    _save(upright, stored, stored_fmt, icc=icc, quality=limits.jpeg_quality)
    files.append(CleanFile("stored", stored, _CONTENT_TYPES[stored_fmt], *upright.size))
    if fmt == "HEIF":
        display_fmt = "PNG" if alpha else "JPEG"
        display = workdir / f"display.{display_fmt.lower()}"
        _save(upright, display, display_fmt, icc=icc, quality=limits.jpeg_quality)
        files.append(CleanFile("display", display, _CONTENT_TYPES[display_fmt],
                               *upright.size))
    timings["encode"] = time.perf_counter() - started

    started = time.perf_counter()
    thumb = _thumbnail(upright, limits)
    thumb_fmt = "WEBP" if alpha else "JPEG"
    thumb_path = workdir / f"thumbnail.{thumb_fmt.lower()}"
    _save(thumb, thumb_path, thumb_fmt, icc=icc, quality=min(limits.jpeg_quality, 85))
    files.append(CleanFile("thumbnail", thumb_path, _CONTENT_TYPES[thumb_fmt], *thumb.size))
    timings["thumbnail"] = time.perf_counter() - started
    return files
