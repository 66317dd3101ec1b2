"""Streaming multipart/form-data: small fields in memory, one file part straight to disk.

The file part is written to a temporary file in a directory the caller names (the media
root's staging area), its SHA-256 computed as it arrives, and the upload is stopped with
413 as soon as it passes its limit. Nothing is ever held whole in memory. Writes and
hashing happen in a worker thread, a megabyte at a time, while the next megabyte is
received (double buffering), so the event loop only parses.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from anyio import to_thread
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from app.core.errors import Invalid, Problem, UnsupportedMediaType
from app.storage.base import file_sha256, fsync_file

FLUSH_BYTES = 1024 * 1024
# A byte count in a header: ASCII digits only (str.isdigit() also takes '²' and '٣'), and
# no more of them than a BIGINT holds.
_BYTE_COUNT = re.compile(r"[0-9]{1,18}")
MAX_FIELDS = 20
MAX_FIELD_BYTES = 8 * 1024


def byte_count(value: str | None) -> int | None:
    """A header's byte count (Content-Length, Upload-Length, Upload-Offset), or None when it
    is missing or is not a plain decimal number."""
    if value is None or not _BYTE_COUNT.fullmatch(value.strip()):
        return None
    return int(value)


@dataclass
class ReceivedFile:
    """An uploaded file on local disk, in the staging area; whoever holds it discards it."""

    path: Path
    size: int
    sha256: str
    filename: str | None = None
    declared_type: str | None = None  # what the client said; never trusted

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    @classmethod
    def from_path(cls, path: Path, filename: str | None = None) -> "ReceivedFile":
        """A file that arrived some other way (a resumable upload, an import), already in
        the staging area: checksummed and fsynced here, so it can go through the same
        checks as a streamed upload."""
        fsync_file(path)
        return cls(path=path, size=path.stat().st_size, sha256=file_sha256(path),
                   filename=filename)


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    file: ReceivedFile | None = None

    def discard(self) -> None:
        if self.file is not None:
            self.file.discard()


class _FileSink:
    """A temp file and its running SHA-256; used from worker threads, one call at a time."""

    def __init__(self, directory: Path, hashing: bool = True) -> None:
        self.path = directory / f"{uuid.uuid4().hex}.part"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._hash = hashlib.sha256() if hashing else None
        self.size = 0

    def write(self, data: bytes) -> None:
        if self._hash is not None:
            self._hash.update(data)  # hashlib releases the GIL for large buffers
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(data)

    def finish(self) -> str:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        return self._hash.hexdigest() if self._hash is not None else ""

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.path.unlink(missing_ok=True)


def _disposition(headers: dict[bytes, bytes]) -> tuple[str | None, str | None]:
    value = headers.get(b"content-disposition")
    if value is None:
        return None, None
    kind, params = parse_options_header(value)
    if kind != b"form-data":
        return None, None
    name = params.get(b"name")
    filename = params.get(b"filename")
    return (name.decode("utf-8", "replace") if name is not None else None,
            filename.decode("utf-8", "replace") if filename is not None else None)


async def receive_multipart(chunks: AsyncIterator[bytes], content_type: str | None,
                            staging: Path, *, file_field: str,
                            limit_for: Callable[[dict[str, str]], int],
                            too_large: Callable[[int], Problem],
                            content_length: int | None = None,
                            max_total: int | None = None) -> ReceivedForm:
    """Parse a multipart body as it arrives. `limit_for(fields so far)` gives the file's
    byte limit when its part begins (send small fields first so it can be exact)."""
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType("Send the upload as multipart/form-data with a 'file' part "
                                   "and the fields as form parts.", slug="multipart-required")
    if max_total is not None and content_length is not None and content_length > max_total:
        raise too_large(max_total)

    form = ReceivedForm()
    state: dict = {"headers": {}, "header_field": b"", "header_value": b"", "name": None,
                   "value": None, "in_file": False, "files": 0, "fields": 0}
    pending: list[bytes] = []
    pending_bytes = 0
    file_bytes = 0  # of the file part so far, written or waiting to be
    writing: asyncio.Future | None = None
    sink: _FileSink | None = None
    limit = 0
    filename = declared = None

    def on_part_begin() -> None:
        state["headers"] = {}
        state["name"] = None
        state["value"] = None
        state["in_file"] = False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header_field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["header_value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["header_field"].strip().lower()] = state["header_value"].strip()
        state["header_field"] = b""
        state["header_value"] = b""

    def on_headers_finished() -> None:
        nonlocal sink, limit, filename, declared
        name, part_filename = _disposition(state["headers"])
        if name is None:
            raise Invalid("Each multipart part needs Content-Disposition: form-data with "
                          "a name.", slug="malformed-multipart", title="Malformed upload")
        state["name"] = name
        if name == file_field:
            state["files"] += 1
            if state["files"] > 1:
                raise Invalid(f"Send one '{file_field}' part per request.",
                              field=["body", file_field])
            limit = limit_for(form.fields)
            filename = part_filename
            raw_type = state["headers"].get(b"content-type")
            declared = raw_type.decode("latin-1")[:100] if raw_type else None
            sink = _FileSink(staging)
            state["in_file"] = True
        else:
            if part_filename is not None:
                raise Invalid(f"Only the '{file_field}' part may carry a file; "
                              f"'{name}' should be a plain field.", field=["body", name])
            # Counted as sent: a name repeated a thousand times is a thousand fields.
            state["fields"] += 1
            if state["fields"] > MAX_FIELDS:
                raise Invalid(f"Too many form fields: send at most {MAX_FIELDS}, each "
                              "name once.", slug="malformed-multipart",
                              title="Malformed upload")
            state["value"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal pending_bytes, file_bytes
        if state["in_file"]:
            pending.append(data[start:end])
            pending_bytes += end - start
            file_bytes += end - start
        else:
            state["value"] += data[start:end]
            if len(state["value"]) > MAX_FIELD_BYTES:
                raise Invalid(f"The field '{state['name']}' is too long.",
                              field=["body", state["name"]])

    def on_part_end() -> None:
        if state["in_file"]:
            state["in_file"] = False
            state["file_done"] = True
        elif state["value"] is not None:
            try:
                form.fields[state["name"]] = bytes(state["value"]).decode("utf-8")
            except UnicodeDecodeError:
                raise Invalid(f"The field '{state['name']}' is not UTF-8 text.",
                              field=["body", state["name"]]) from None

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished})

    async def flush(last: bool = False) -> None:
        """Hand the pending bytes to the writer thread, once it is done with the last
        batch; the next batch is received while this one is written and hashed."""
        nonlocal pending_bytes, writing
        if writing is not None:
            await writing
            writing = None
        if pending and sink is not None:
            data = b"".join(pending)
            pending.clear()
            pending_bytes = 0
            writing = asyncio.ensure_future(to_thread.run_sync(sink.write, data))
        if last and writing is not None:
            await writing
            writing = None

    total = 0
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            total += len(chunk)
            if max_total is not None and total > max_total:  # whatever the parts are
                raise too_large(max_total)
            parser.write(chunk)
            if sink is not None:
                if file_bytes > limit:
                    raise too_large(limit)
                if pending_bytes >= FLUSH_BYTES:
                    await flush()
        parser.finalize()
        if sink is not None:
            if not state.get("file_done"):
                raise Invalid("The upload ended before the file part did.",
                              slug="malformed-multipart", title="Malformed upload")
            if file_bytes > limit:
                raise too_large(limit)
            await flush(last=True)
            digest = await to_thread.run_sync(sink.finish)
            form.file = ReceivedFile(path=sink.path, size=sink.size, sha256=digest,
                                     filename=filename, declared_type=declared)
        return form
    except ClientDisconnect:
        raise Problem("The connection closed before the upload finished; nothing was "
                      "stored. Send it again.", slug="upload-interrupted",
                      title="Upload interrupted") from None
    except Problem:
        raise
    except Exception as exc:  # the parser's own errors: a broken body
        if type(exc).__module__.startswith("python_multipart"):
            raise Invalid("The multipart body could not be read.", slug="malformed-multipart",
                          title="Malformed upload") from None
        raise
    finally:
        if writing is not None:  # let the writer thread finish before its file goes
            with contextlib.suppress(BaseException):
                await asyncio.wait([writing])
        if sink is not None and form.file is None:
            sink.abort()


async def receive_raw(chunks: AsyncIterator[bytes], staging: Path) -> ReceivedFile:
    """The ceiling for benchmarks: the body straight to disk, no parsing, hashing or limit."""
    sink = _FileSink(staging, hashing=False)
    pending: list[bytes] = []
    size = 0
    ok = False
    try:
        async for chunk in chunks:
            pending.append(chunk)
            size += len(chunk)
            if size >= FLUSH_BYTES:
                await to_thread.run_sync(sink.write, b"".join(pending))
                pending.clear()
                size = 0
        if pending:
            await to_thread.run_sync(sink.write, b"".join(pending))
        digest = await to_thread.run_sync(sink.finish)
        ok = True
        return ReceivedFile(path=sink.path, size=sink.size, sha256=digest)
    finally:
        if not ok:
            sink.abort()
