"""One uploaded file, streamed to the media root's staging area (never /tmp, never whole in
memory), stopped with 413 at its limit. Writes happen in a worker thread."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from anyio import to_thread
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from app.core.errors import Invalid, Problem

_FLUSH = 1024 * 1024


def _too_large(limit: int) -> Problem:
    return Problem(f"The file is larger than {limit:,} bytes.", status=413,
                   slug="upload-too-large", title="Upload too large", max_bytes=limit)


async def receive_file(chunks: AsyncIterator[bytes], content_type: str | None, staging: Path,
                       *, max_bytes: int, field: str = "file") -> tuple[Path, str | None]:
    """The `field` part of a multipart body, written to a new file in `staging`.
    Answers (path, the filename the client gave). The caller deletes the file."""
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Problem(f"Send the file as multipart/form-data in a part named '{field}'.",
                      status=415, slug="multipart-required", title="Multipart required")
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / f"{uuid.uuid4().hex}.part"
    state: dict = {"headers": {}, "hf": b"", "hv": b"", "in_file": False, "done": False,
                   "filename": None, "seen": False}
    pending: list[bytes] = []
    size = 0
    fd = -1

    def on_part_begin() -> None:
        state["headers"] = {}
        state["in_file"] = False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hf"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hv"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["hf"].strip().lower()] = state["hv"].strip()
        state["hf"] = state["hv"] = b""

    def on_headers_finished() -> None:
        nonlocal fd
        disposition = state["headers"].get(b"content-disposition", b"")
        _, disp = parse_options_header(disposition)
        if disp.get(b"name", b"").decode("utf-8", "replace") == field:
            if state["seen"]:
                raise Invalid(f"Send one '{field}' part.", field=["body", field])
            state["seen"] = state["in_file"] = True
            name = disp.get(b"filename")
            state["filename"] = name.decode("utf-8", "replace")[:200] if name else None
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal size
        if state["in_file"]:
            pending.append(data[start:end])
            size += end - start
            if size > max_bytes:
                raise _too_large(max_bytes)

    def on_part_end() -> None:
        if state["in_file"]:
            state["in_file"] = False
            state["done"] = True

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished})

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    async def flush() -> None:
        if pending and fd >= 0:
            data = b"".join(pending)
            pending.clear()
            await to_thread.run_sync(write, data)

    ok = False
    try:
        async for chunk in chunks:
            if chunk:
                parser.write(chunk)
                if sum(map(len, pending)) >= _FLUSH:
                    await flush()
        parser.finalize()
        if not state["done"]:
            raise Invalid(f"The upload has no complete '{field}' part.", field=["body", field])
        await flush()
        ok = True
        return path, state["filename"]
    except ClientDisconnect:
        raise Problem("The connection closed before the upload finished; nothing was "
                      "stored.", slug="upload-interrupted", title="Upload interrupted") from None
    except Problem:
        raise
    except Exception as exc:
        if type(exc).__module__.startswith("python_multipart"):
            raise Invalid("The multipart body could not be read.", slug="malformed-multipart",
                          title="Malformed upload") from None
        raise
    finally:
        if fd >= 0:
            os.close(fd)
        if not ok:
            path.unlink(missing_ok=True)
