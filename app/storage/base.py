"""The MediaStore interface: content-addressed blobs, keyed by their SHA-256 in hex, and
the parts of resumable uploads; and the staging area where one request keeps its
temporary files."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
import shutil
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

_KEY = re.compile(r"^[0-9a-f]{64}$")
_PART_SEGMENT = re.compile(r"^[0-9A-Za-z_.-]{1,128}$")

# A staging file outside any live process's own area (left by an older version, or by a
# process that could not lock its area) is removed once it has not changed for this long.
STAGING_GRACE_SECONDS = 120
# Inside a live process's area a file is only removed when it is this old: requests remove
# their own files, so only a bug could leave one behind while the process runs.
LIVE_STAGING_MAX_AGE_SECONDS = 86400


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError("a media key is a SHA-256 in lowercase hex")
    return key


def check_part(*segments: str) -> None:
    for segment in segments:
        if not _PART_SEGMENT.match(segment):
            raise ValueError("an upload part is named by the upload's id and the part's name")


def private_dir(path: Path) -> Path:
    """A directory only the service's own user may read (0700), made if missing, with any
    missing parents made 0700 too (mkdir's own `parents` would follow the umask). A
    directory that was there keeps its parents as the council set them."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            pass  # made by another process meanwhile
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Make the file if missing, owner-only (0600) either way."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return path


# --- staging: per-process, so a crash's leftovers are known to be leftovers --------------

_staging_lock = threading.Lock()
_staging: dict[Path, tuple[int, Path, int]] = {}  # tmp root -> (pid, own area, lock fd)


def staging_dir(media_root: Path) -> Path:
    """Where this process keeps one request's temporary files: `media_root/tmp/p<pid>-<x>/`,
    on the media root's own volume (same encryption at rest, an atomic rename into place),
    never the system's /tmp. The area is held by an exclusive lock on `<area>.lock` for the
    life of the process; once the process is gone (a crash, kill -9) the lock is free and
    `sweep_staging` knows everything in the area is a leftover. Making the area sweeps what
    dead processes left, so a restarted server starts clean."""
    tmp = Path(media_root) / "tmp"
    with _staging_lock:
        held = _staging.get(tmp)
        if held is not None and held[0] == os.getpid() and held[1].is_dir():
            return held[1]
        private_dir(tmp)
        name = f"p{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(tmp / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        area = tmp / name
        area.mkdir(mode=0o700)
        _staging[tmp] = (os.getpid(), area, fd)
    sweep_staging(media_root)
    return area


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _newest_change(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for inner in path.rglob("*"):
            try:
                newest = max(newest, inner.lstat().st_mtime)
            except FileNotFoundError:
                pass
    return newest


def sweep_staging(media_root: Path, *, now: float | None = None) -> int:
    """Remove what a crash left in `media_root/tmp` (tus assemblies, transcode files,
    multipart parts): at once for the areas of processes that are gone; otherwise only
    files nobody can be using (see the constants above). Returns how many entries went."""
    tmp = Path(media_root) / "tmp"
    if not tmp.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    entries = list(tmp.iterdir())
    areas = {e.name[:-5] for e in entries if e.name.endswith(".lock")}
    for entry in entries:
        try:
            if entry.name.endswith(".lock"):
                removed += _sweep_area(tmp, entry, now)
            elif entry.name in areas:
                continue  # judged through its lock file
            elif now - _newest_change(entry) > STAGING_GRACE_SECONDS:
                _remove(entry)
                removed += 1
        except FileNotFoundError:
            continue  # removed by another sweeper meanwhile
    return removed


def _sweep_area(tmp: Path, lock_file: Path, now: float) -> int:
    area = tmp / lock_file.name[:-5]
    fd = os.open(lock_file, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live process's area (this one's own included)
            stale = [p for p in area.iterdir()
                     if now - _newest_change(p) > LIVE_STAGING_MAX_AGE_SECONDS] \
                if area.is_dir() else []
            for path in stale:
                _remove(path)
            return len(stale)
        _remove(area)
        lock_file.unlink(missing_ok=True)
        return 1
    finally:
        os.close(fd)


# --- files ---------------------------------------------------------------------------

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
    once; a blob is never overwritten, and is either wholly there or not there at all.

    Beside the blobs, the store keeps the parts of resumable uploads (`uploads/<upload
    id>/<part>`), so that any API process can take an upload's next PATCH: the processes
    need share nothing but the database and the store."""

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
        """The bytes start..end (inclusive; end None = to the last byte), in chunks. A
        missing blob raises FileNotFoundError here, before any chunk is asked for."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the blob if it is there (callers check no row still names it)."""

    @abstractmethod
    def keys(self) -> Iterator[tuple[str, float]]:
        """Every blob's key and when it was written (Unix time), for the sweeper."""

    # --- resumable upload parts ------------------------------------------------------

    @abstractmethod
    def put_part(self, upload: str, name: str, source: Path) -> None:
        """Keep the finished local file `source` (consumed) as part `name` of `upload`."""

    @abstractmethod
    def read_part(self, upload: str, name: str,
                  chunk_size: int = 1024 * 1024) -> Iterator[bytes]: ...

    @abstractmethod
    def parts(self, upload: str) -> list[tuple[str, float]]:
        """The names of an upload's parts, and when each was written (Unix time)."""

    @abstractmethod
    def part_uploads(self) -> Iterator[tuple[str, float]]:
        """Every upload that has parts, with when its newest part was written."""

    @abstractmethod
    def delete_parts(self, upload: str, names: list[str] | None = None) -> None:
        """Remove the named parts of an upload (all of them when `names` is None)."""
