import re
import time
import uuid

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.core.errors import Problem
from app.core.multipart import byte_count, receive_multipart, receive_raw
from app.models.capture import EntryOut
from app.models.erasure import MediaErasureOut
from app.models.media import MediaErase, MediaUploadIn
from app.core.context import Context
from app.routers.boards import serve_board_asset
from app.routers.deps import VersionPath, AppSettings, Ctx, get_db
from app.services import capture
from app.services.media import records as media, capture as media_capture, signed
from app.storage import staging_dir

router = APIRouter(tags=["media"])
bench_router = APIRouter(tags=["benchmark"], include_in_schema=False)


def _form_property(prop: dict) -> dict:
    """A form field's schema, with an optional field's `anyOf: [X, null]` folded into X."""
    shown = next((p for p in prop.get("anyOf", []) if p.get("type") != "null"), {})
    shown = {**shown, **{k: v for k, v in prop.items() if k != "anyOf"}}
    return {k: v for k, v in shown.items()
            if k in ("type", "format", "enum", "description", "default", "maxLength")}


_UPLOAD_SCHEMA = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file", "kind", "client_id", "captured_at"],
        "properties": {
            **{name: _form_property(prop)
               for name, prop in MediaUploadIn.model_json_schema()["properties"].items()},
            "file": {"type": "string", "format": "binary", "description":
                     "The photo (JPEG, PNG, WebP, HEIC/HEIF) or recording (AAC/M4A, "
                     "Opus/WebM, Opus or Vorbis/Ogg, MP3, WAV). Send it after the fields."},
        }},
        "example": {"kind": "photo", "client_id": "3c9d7e10-0000-4000-8000-000000000030",
                    "captured_at": "2026-03-02T10:40:00+00:00", "source": "child_direct",
                    "prompt": "Show me your favourite place", "topic": "places",
                    "caption": "The swings", "file": "(the photo's bytes)"}}},
}


@router.post(
    "/sessions/{session_id}/media", response_model=EntryOut,
    status_code=status.HTTP_201_CREATED, openapi_extra={"requestBody": _UPLOAD_SCHEMA},
    summary="Upload a photo or recording (201), or get back the stored entry (200)",
    responses={200: {"model": EntryOut, "description": "Already stored: this client_id was "
                     "sent before with the same file; the stored entry is returned."},
               409: {"description": "This client_id was used for a different upload, or "
                     "is still being processed (retry)."},
               413: {"description": "The file passed its kind's size limit."},
               415: {"description": "Not an accepted photo or recording type."},
               422: {"description": "Unreadable, empty, too many pixels, too long, or a "
                     "field is missing or invalid."}})
async def upload_media(session_id: uuid.UUID, request: Request, ctx: Ctx,
                       settings: AppSettings, response: Response) -> EntryOut:
    """Multipart form: `file`, `kind` (photo or audio), `client_id`, `captured_at`, and
    optionally `prompt`, `topic`, `source`, `caption`, `entry_client_id` (attach to a
    symbols or mat entry of this session), `keep_taken_at`. Send the fields before the
    file so the size limit of its kind applies from the first byte."""
    session = await run_in_threadpool(media_capture.authorise, ctx, session_id)
    started = time.perf_counter()
    form = await receive_multipart(
        request.stream(), request.headers.get("content-type"),
        staging_dir(settings.media_root), file_field="file",
        limit_for=lambda fields: media_capture.limit_for(settings, fields.get("kind")),
        too_large=media_capture.too_large,
        content_length=byte_count(request.headers.get("content-length")),
        max_total=media_capture.limit_for(settings, None) + 64 * 1024)
    received = time.perf_counter() - started
    try:
        entry, created, timings = await media_capture.add_media(
            ctx, session, form, settings=settings, store=request.app.state.media_store,
            jobs=request.app.state.media_jobs)
    finally:
        await run_in_threadpool(form.discard)
    if not created:
        response.status_code = status.HTTP_200_OK
    if settings.bench_endpoints:
        timings["receive"] = received
        response.headers["Server-Timing"] = ", ".join(
            f"{name};dur={seconds * 1000:.1f}" for name, seconds in timings.items())
    return entry


_RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One byte range, inclusive, or None for the whole file. A header we cannot read, or
    several ranges, is ignored (RFC 9110 allows it); an unsatisfiable one answers 416."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0:
            raise _unsatisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # not a valid range at all: ignored
    if start >= size:
        raise _unsatisfiable(size)
    return start, min(end, size - 1)


def _unsatisfiable(size: int) -> Problem:
    return Problem(f"The requested range is outside the file, which has {size} bytes.",
                   status=416, slug="range-not-satisfiable", title="Range not satisfiable",
                   headers={"Content-Range": f"bytes */{size}"})


def _serve(request: Request, ctx: Ctx, media_id: uuid.UUID, which: str) -> Response:
    served = media.open_media(ctx, media_id, which)
    etag = f'"{served.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        # Private (never a shared cache), and revalidated on every use, so a withdrawn
        # consent or a change of worker takes effect at once.
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="{served.filename}"',
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and (if_none_match.strip() == "*" or
                          etag in [t.strip() for t in if_none_match.split(",")]):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        wanted = None  # the client's copy is stale: send the whole file
    byte_range = _byte_range(wanted, served.size)
    store = request.app.state.media_store
    head_only = request.method == "HEAD"  # the same answer, without the bytes
    if byte_range is None:
        headers["Content-Length"] = str(served.size)
        if head_only:
            return Response(status_code=200, media_type=served.content_type, headers=headers)
        return StreamingResponse(store.open_range(served.sha256), status_code=200,
                                 media_type=served.content_type, headers=headers)
    start, end = byte_range
    headers["Content-Range"] = f"bytes {start}-{end}/{served.size}"
    headers["Content-Length"] = str(end - start + 1)
    if head_only:
        return Response(status_code=status.HTTP_206_PARTIAL_CONTENT,
                        media_type=served.content_type, headers=headers)
    return StreamingResponse(store.open_range(served.sha256, start, end),
                             status_code=status.HTTP_206_PARTIAL_CONTENT,
                             media_type=served.content_type, headers=headers)


_SERVE_RESPONSES = {200: {"content": {"image/*": {}, "audio/*": {}},
                          "description": "The file."},
                    206: {"description": "Part of the file (Range)."},
                    304: {"description": "Not modified (If-None-Match)."},
                    410: {"description": "Withdrawn (its consent was withdrawn) or erased."},
                    416: {"description": "Range not satisfiable."}}


def _serving(path: str, summary: str):  # noqa: ANN202
    """GET and HEAD (the same answer without the bytes) for one media URL."""
    def both(endpoint):  # noqa: ANN001, ANN202
        for method, what in ((router.get, summary),
                             (router.head, f"{summary}: headers only, no bytes")):
            method(path, response_class=StreamingResponse, responses=_SERVE_RESPONSES,
                   summary=what)(endpoint)
        return endpoint
    return both


@_serving("/media/{media_id}", "The clean photo or recording (for HEIC, its JPEG rendition)")
def get_media(media_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    return _serve(request, ctx, media_id, "main")


@_serving("/media/{media_id}/thumbnail", "A photo's thumbnail")
def get_thumbnail(media_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    return _serve(request, ctx, media_id, "thumbnail")


@_serving("/media/{media_id}/playback",
          "A recording's playback copy (AAC in M4A; every browser plays it)")
def get_playback(media_id: uuid.UUID, request: Request, ctx: Ctx) -> Response:
    return _serve(request, ctx, media_id, "playback")


class _SignedQuery:
    """The signature part of a signed URL (see services/media/signed.py)."""

    def __init__(self, viewer: Annotated[uuid.UUID, Query(description="Who the link was "
                                                          "made for.")],
                 expires: Annotated[int, Query(ge=0, le=2 ** 40, description="Seconds since "
                                               "the epoch.")],
                 signature: Annotated[str, Query(min_length=1, max_length=100)]) -> None:
        self.signature = signed.Signature(viewer, expires, signature)


def _signed_context(request: Request, db, resource: str, query: _SignedQuery) -> Context:  # noqa: ANN001
    actor = request.app.state.signed_urls.viewer(db, resource, query.signature)
    db.commit()
    return Context(db=db, actor=actor, client_ip=request.client.host if request.client else None,
                   user_agent=request.headers.get("user-agent"),
                   request_id=getattr(request.state, "request_id", None))


Which = Annotated[str, Path(pattern="^(main|thumbnail|playback)$")]


@router.get("/signed/media/{media_id}/{which}", response_class=StreamingResponse,
            responses={**_SERVE_RESPONSES, 403: {"description": "The link was changed, is "
                                                 "for another file, or has expired."}},
            summary="A photo or recording through a short-lived signed link (for pages)")
def get_signed_media(media_id: uuid.UUID, which: Which, request: Request,
                     query: Annotated[_SignedQuery, Depends()], db=Depends(get_db)) -> Response:  # noqa: ANN001
    """What `/media/{id}`, `/thumbnail` or `/playback` serve, for the viewer the link was
    made for, while it lasts and while they may still see the child; audited as theirs."""
    ctx = _signed_context(request, db, signed.media_resource(media_id, which), query)
    return _serve(request, ctx, media_id, which)


@router.get("/signed/boards/{board_id}/versions/{version}/images/{image_id}",
            response_class=StreamingResponse,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}}},
                       403: {"description": "The link was changed, is for another image, "
                             "or has expired."}},
            summary="A board version's image through a short-lived signed link (for pages)")
def get_signed_board_image(board_id: uuid.UUID, version: VersionPath,
                           image_id: Annotated[str, Path(max_length=100)], request: Request,
                           query: Annotated[_SignedQuery, Depends()],
                           db=Depends(get_db)) -> Response:  # noqa: ANN001
    ctx = _signed_context(request, db, signed.board_image_resource(board_id, version, image_id),
                          query)
    return serve_board_asset(ctx, request, board_id, version, "images", image_id)


@router.post("/media/{media_id}/erase", response_model=MediaErasureOut,
             summary="Erase a photo or recording, with a reason (team manager); the entry "
             "keeps a tombstone, and the answer says which other copies of the bytes were "
             "erased with it and which remain, and why",
             responses={409: {"description": "Already erased."}})
def erase_media(media_id: uuid.UUID, data: MediaErase, request: Request,
                ctx: Ctx) -> MediaErasureOut:
    entry_id, report = media.erase_media(ctx, request.app.state.media_store, media_id, data)
    entry = capture.get_entry(ctx, entry_id)
    return MediaErasureOut(**entry.model_dump(), erasure=report)


@bench_router.post("/bench/stream")
async def bench_stream(request: Request, settings: AppSettings) -> dict:
    """The benchmark's ceiling: the body written to disk and nothing else. Mounted only
    when CHILDVOICE_BENCH_ENDPOINTS=1."""
    received = await receive_raw(request.stream(), staging_dir(settings.media_root))
    await run_in_threadpool(received.discard)
    return {"bytes": received.size}


def _pillow_baseline(path: str, quality: int) -> dict:
    """Pillow's own decode + re-encode of a file, and the same with the EXIF orientation
    applied: what the photo pipeline is measured against, in the same server."""
    import io

    from PIL import Image, ImageOps

    timings = {}
    for name, orient in (("decode_encode", False), ("decode_orient_encode", True)):
        started = time.perf_counter()
        with Image.open(path) as image:
            image.load()
            out = ImageOps.exif_transpose(image) if orient else image
            out.save(io.BytesIO(), "JPEG", quality=quality)
        timings[name] = time.perf_counter() - started
    return timings


@bench_router.post("/bench/pillow")
async def bench_pillow(request: Request, settings: AppSettings) -> dict:
    """Pillow's decode + re-encode of the posted JPEG, timed in a media job like the photo
    pipeline. Mounted only when CHILDVOICE_BENCH_ENDPOINTS=1."""
    received = await receive_raw(request.stream(), staging_dir(settings.media_root))
    try:
        return await request.app.state.media_jobs.run(_pillow_baseline, str(received.path),
                                                      settings.media_jpeg_quality)
    finally:
        await run_in_threadpool(received.discard)
