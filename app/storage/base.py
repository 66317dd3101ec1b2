"""The MediaStore interface: content-addressed blobs, keyed by their SHA-256 in hex."""

from __future__ import annotations

import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

_KEY = re.compile(r"^[0-9a-f]{64}$")


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError("a media key is a SHA-256 in lowercase hex")
    return key


def staging_dir(media_root: Path) -> Path:
    """Temporary files live on the media root's own volume (same encryption at rest, and an
    atomic rename into place), never in the system's /tmp."""
    path = media_root / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: Path) -> str:
    """The SHA-256 (hex) of a file's bytes: a media blob's key."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MediaStore(ABC):
    """Blobs named by the SHA-256 of their bytes. Writing the same bytes twice stores them
    once; a blob is either wholly there or not there at all."""

    @abstractmethod
    def put(self, key: str, source: Path, *, content_type: str) -> bool:
        """Take the finished local file `source` (already fsynced; it is consumed) as the
        blob `key`. Returns True if this call created the blob, False if it was there."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def open_range(self, key: str, start: int = 0, end: int | None = None,
                   chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        """The bytes start..end (inclusive; end None = to the last byte), in chunks."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the blob if it is there (callers check no row still names it)."""

    @abstractmethod
    def keys(self) -> Iterator[tuple[str, float]]:
        """Every blob's key and when it was written (Unix time), for the sweeper."""
