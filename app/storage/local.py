"""The default store: files under media_root/objects/ab/cd/<sha256>, and the parts of
resumable uploads under media_root/uploads/<upload id>/. Everything it creates is the
service's own user's alone (files 0600, directories 0700)."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from app.storage.base import MediaStore, check_key, check_part, fsync_dir, private_dir


class LocalDiskStore(MediaStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.uploads = self.root / "uploads"

    def path(self, key: str) -> Path:
        check_key(key)
        return self.objects / key[:2] / key[2:4] / key

    def _private_parents(self, target: Path, top: Path) -> None:
        private_dir(top)
        for directory in reversed(target.relative_to(top).parents[:-1]):
            private_dir(top / directory)

    def put(self, key: str, source: Path, *, content_type: str) -> bool:
        target = self.path(key)
        self._private_parents(target, self.objects)
        os.chmod(source, 0o600)  # whatever made it (Pillow, PyAV) followed the umask
        try:
            # A hard link never replaces what is there: the first writer of a key wins and
            # a reader never sees a half-written blob (source was written and fsynced first).
            os.link(source, target)
            created = True
        except FileExistsError:
            created = False
        except OSError as exc:  # pragma: no cover - file systems without hard links
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            created = not target.exists()
            if created:
                os.replace(source, target)
        if created:
            fsync_dir(target.parent)
        source.unlink(missing_ok=True)
        return created

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def open_range(self, key: str, start: int = 0, end: int | None = None,
                   chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        return _file_chunks(self.path(key), start, end, chunk_size)

    def keys(self) -> Iterator[tuple[str, float]]:
        if not self.objects.exists():
            return
        for path in self.objects.glob("??/??/*"):
            if path.is_file() and len(path.name) == 64:
                yield path.name, path.stat().st_mtime

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)

    # --- resumable upload parts ------------------------------------------------------

    def _part(self, upload: str, name: str) -> Path:
        check_part(upload, name)
        return self.uploads / upload / name

    def put_part(self, upload: str, name: str, source: Path) -> None:
        target = self._part(upload, name)
        self._private_parents(target, self.uploads)
        os.chmod(source, 0o600)
        os.replace(source, target)  # the staging area is on the same volume
        fsync_dir(target.parent)

    def read_part(self, upload: str, name: str,
                  chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        return _file_chunks(self._part(upload, name), 0, None, chunk_size)

    def parts(self, upload: str) -> list[tuple[str, float]]:
        check_part(upload)
        directory = self.uploads / upload
        if not directory.is_dir():
            return []
        return [(p.name, p.stat().st_mtime) for p in directory.iterdir() if p.is_file()]

    def part_uploads(self) -> Iterator[tuple[str, float]]:
        if not self.uploads.is_dir():
            return
        for directory in self.uploads.iterdir():
            if directory.is_dir():
                yield directory.name, directory.stat().st_mtime

    def delete_parts(self, upload: str, names: list[str] | None = None) -> None:
        check_part(upload)
        if names is None:
            shutil.rmtree(self.uploads / upload, ignore_errors=True)
            return
        for name in names:
            self._part(upload, name).unlink(missing_ok=True)


def _file_chunks(path: Path, start: int, end: int | None, chunk_size: int) -> Iterator[bytes]:
    handle = open(path, "rb")  # opened now, so a missing file fails before any byte is sent

    def chunks() -> Iterator[bytes]:
        with handle:
            handle.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                data = handle.read(chunk_size if remaining is None
                                   else min(chunk_size, remaining))
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

    return chunks()
