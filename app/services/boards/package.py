"""Reading an .obz package (a zip) without trusting it.

Nothing is extracted by the package's own names: members are read into memory one at a
time, only those a board names, each bounded. Before any member is read the whole directory is checked, and
a package that breaks a rule is refused as a whole with a 4xx that says which:

- the member count, from the end-of-central-directory record, before the directory is
  parsed (so a million-entry directory costs nothing);
- each name: no absolute paths, `..`, backslashes, drive letters or NUL; no symlinks,
  encryption, or compression methods other than stored and deflate; no duplicates;
- no nested archives (by name, and by magic bytes when a member is read);
- the declared uncompressed size of each member, of all members together, and each
  member's compression ratio; overlapping members (the "overlap" zip bomb);
- while reading: the actual bytes, against the same limits, stopping at the first byte
  past them (zipfile never inflates past the declared size; we count anyway).
"""

from __future__ import annotations

import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from app.core.config import Settings
from app.core.errors import Problem

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NESTED_SUFFIXES = (".zip", ".obz", ".jar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar",
                    ".tar", ".zst", ".lz", ".lzma", ".cab")
_NESTED_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08", b"\x1f\x8b", b"BZh",
                 b"\xfd7zXZ\x00", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\x28\xb5\x2f\xfd")
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 64 * 1024


def refused(detail: str, slug: str, status: int = 422, **extra: object) -> Problem:
    return Problem(detail, status=status, slug=slug, title="Board package refused", **extra)


class MemberProblem(Exception):
    """A member that is missing or damaged: the boards needing it are skipped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _declared_entry_count(path: Path) -> int:
    """The member count the end-of-central-directory record declares (ZIP64 included)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        tail_len = min(size, 22 + 65535 + 20)
        handle.seek(size - tail_len)
        tail = handle.read(tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            raise refused("This is not a readable .obz package: the zip's directory is "
                          "missing. Export the board set again from its app.", "not-a-package")
        count = struct.unpack("<H", tail[at + 10:at + 12])[0]
        locator = tail[at - 20:at] if at >= 20 else b""
        if locator.startswith(b"PK\x06\x07"):
            offset = struct.unpack("<Q", locator[8:16])[0]
            if offset + 56 <= size:
                handle.seek(offset)
                record = handle.read(56)
                if record.startswith(b"PK\x06\x06"):
                    count = max(count, struct.unpack("<Q", record[32:40])[0])
        return count


def _unsafe_name(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or \
            _DRIVE.match(name):
        return True
    return ".." in name.split("/")


def _clean_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


@dataclass
class Package:
    """An opened, checked .obz; read members with `read`."""

    zf: zipfile.ZipFile
    settings: Settings
    members: dict[str, zipfile.ZipInfo] = field(default_factory=dict)
    read_total: int = 0

    def close(self) -> None:
        self.zf.close()

    def has(self, name: str) -> bool:
        return name in self.members

    def names(self) -> list[str]:
        return list(self.members)

    def read(self, name: str, max_bytes: int) -> bytes:
        """A member's bytes, refusing the package if it turns out to be a bomb or an
        archive; MemberProblem when it is missing, too big for its use, or damaged."""
        info = self.members.get(name)
        if info is None:
            raise MemberProblem(f"{name} is not in the package")
        if info.file_size > max_bytes:
            raise MemberProblem(f"{name} is {info.file_size:,} bytes; the limit for it is "
                                f"{max_bytes:,}")
        s = self.settings
        allowed = min(max_bytes, s.board_zip_max_member_bytes)
        ratio_cap = max(info.compress_size * s.board_zip_max_ratio,
                        s.board_zip_ratio_floor_bytes)
        chunks: list[bytes] = []
        got = 0
        try:
            with self.zf.open(info) as stream:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    if got == 0 and chunk.startswith(_NESTED_MAGIC):
                        raise refused(f"{name} is itself an archive; packages that hold "
                                      "archives are not accepted.", "nested-archive")
                    got += len(chunk)
                    self.read_total += len(chunk)
                    if got > info.file_size or got > ratio_cap or \
                            self.read_total > s.board_zip_max_total_bytes:
                        raise _bomb(f"{name} unpacks to more than it declares or than its "
                                    "compressed size allows")
                    if got > allowed:
                        raise MemberProblem(f"{name} is larger than {allowed:,} bytes")
                    chunks.append(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
                NotImplementedError):
            raise MemberProblem(f"{name} is damaged in the package") from None
        return b"".join(chunks)


def _bomb(detail: str) -> Problem:
    return refused(f"This package looks like a zip bomb: {detail}. Nothing was imported.",
                   "zip-bomb", status=413)


def open_package(path: Path, settings: Settings) -> Package:
    """Open the zip at `path` and check its whole directory (see the module's doc)."""
    s = settings
    count = _declared_entry_count(path)
    if count > s.board_zip_max_members:
        raise refused(f"This package has {count:,} members; the most accepted is "
                      f"{s.board_zip_max_members:,}. Nothing was imported.", "too-many-members")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            struct.error):
        raise refused("This is not a readable .obz package (a zip file). Export the board "
                      "set again from its app.", "not-a-package") from None
    try:
        infos = zf.infolist()
        if len(infos) > s.board_zip_max_members:
            raise refused(f"This package has {len(infos):,} members; the most accepted is "
                          f"{s.board_zip_max_members:,}. Nothing was imported.",
                          "too-many-members")
        package = Package(zf=zf, settings=s)
        declared_total = 0
        for info in infos:
            name = info.filename
            if _unsafe_name(name):
                raise refused("The package names a member outside itself "
                              f"({name[:100]!r}); nothing was imported.", "unsafe-member-name")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise refused(f"The package holds a symbolic link ({name[:100]!r}); "
                              "nothing was imported.", "unsafe-member-name")
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise refused(f"{name[:100]} is encrypted; send a package without a "
                              "password.", "encrypted-member")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise refused(f"{name[:100]} uses a compression method other than stored "
                              "or deflate.", "unsupported-compression")
            if name.lower().endswith(_NESTED_SUFFIXES):
                raise refused(f"{name[:100]} is an archive inside the package; packages "
                              "that hold archives are not accepted.", "nested-archive")
            if info.file_size > s.board_zip_max_member_bytes:
                raise _bomb(f"{name[:100]} declares {info.file_size:,} bytes unpacked "
                            f"(the limit is {s.board_zip_max_member_bytes:,})")
            if info.file_size > s.board_zip_ratio_floor_bytes and \
                    info.file_size > max(info.compress_size, 1) * s.board_zip_max_ratio:
                raise _bomb(f"{name[:100]} is compressed more than "
                            f"{s.board_zip_max_ratio}:1")
            declared_total += info.file_size
            if declared_total > s.board_zip_max_total_bytes:
                raise _bomb("its members declare more than "
                            f"{s.board_zip_max_total_bytes:,} bytes unpacked")
            clean = _clean_name(name)
            if clean in package.members:
                raise refused(f"The package names {clean[:100]!r} twice; nothing was "
                              "imported.", "duplicate-member")
            package.members[clean] = info
        ordered = sorted(package.members.values(), key=lambda i: i.header_offset)
        for first, second in zip(ordered, ordered[1:]):
            if first.header_offset + 30 + first.compress_size > second.header_offset:
                raise _bomb("its members overlap each other")
        return package
    except BaseException:
        zf.close()
        raise
