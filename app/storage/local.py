"""The default store: files under media_root/objects/ab/cd/<sha256>."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

from app.storage.base import MediaStore, check_key, fsync_dir


class LocalDiskStore(MediaStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"

    def path(self, key: str) -> Path:
        check_key(key)
        return self.objects / key[:2] / key[2:4] / key

    def put(self, key: str, source: Path, *, content_type: str) -> bool:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
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
        path = self.path(key)
        handle = open(path, "rb")  # opened now, so a missing blob fails before any byte is sent

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
