"""tus 1.0 resumable uploads at /api/v1/uploads/ (see docs/sync.md)."""

import uuid

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from app.core.errors import Problem
from app.routers.deps import AppSettings, Ctx, DeviceKey
from app.services.media import capture as media_capture, uploads
from app.services.media.uploads import TUS_EXTENSIONS, TUS_VERSION, http_date, tus_headers



class TusRoute(APIRoute):
    """Every tus answer, problems included, says which tus it speaks."""

    def get_route_handler(self):  # noqa: ANN201
        handler = super().get_route_handler()

        async def with_tus_header(request: Request) -> Response:
            try:
                response = await handler(request)
            except Problem as problem:
                problem.headers = {**problem.headers, "Tus-Resumable": TUS_VERSION}
                raise
            response.headers.setdefault("Tus-Resumable", TUS_VERSION)
            return response
        return with_tus_header


router = APIRouter(tags=["offline sync"], route_class=TusRoute)

BASE = "/api/v1/uploads"
_TUS_RESPONSES = {412: {"description": "Tus-Resumable is missing or not 1.0.0."}}


def _require_tus(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise Problem("Send Tus-Resumable: 1.0.0 (this server speaks tus 1.0.0).", status=412,
                      slug="tus-version", title="Unsupported tus version",
                      headers={"Tus-Version": TUS_VERSION})


@router.options("/uploads/", status_code=204, summary="tus discovery: version, extensions, "
                "largest upload, checksum algorithms")
def discover(settings: AppSettings) -> Response:
    return Response(status_code=204, headers={
        "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION,
        "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Max-Size": str(media_capture.limit_for(settings, None)),
        "Tus-Checksum-Algorithm": ",".join(uploads.CHECKSUMS)})


@router.post("/uploads/", status_code=201, responses=_TUS_RESPONSES,
             summary="Create a resumable upload of a photo or recording (tus creation)")
def create(request: Request, ctx: Ctx, settings: AppSettings, device_key: DeviceKey) -> Response:
    """Headers: `Tus-Resumable: 1.0.0`, `Upload-Length`, `Upload-Metadata` (base64 values:
    `session_id` or `session_client_id`, `client_id`, `kind`, `captured_at`, `source`,
    `filename`; optionally `prompt`, `topic`, `entry_client_id`), `X-Device-Key` and the
    worker's staff token. Answers 201 with `Location`; no body."""
    _require_tus(request)
    upload = uploads.create(ctx, settings, device_key, request.headers.get("upload-length"),
                            request.headers.get("upload-metadata"))
    return Response(status_code=201, headers=tus_headers(
        Location=f"{BASE}/{upload.id}", **{"Upload-Expires": http_date(upload.expires_at),
                                           "Upload-Offset": "0"}))


@router.head("/uploads/{upload_id}", responses=_TUS_RESPONSES,
             summary="Where an upload stands: Upload-Offset and Upload-Length")
def head(upload_id: uuid.UUID, request: Request, ctx: Ctx, settings: AppSettings,
         device_key: DeviceKey) -> Response:
    _require_tus(request)
    upload = uploads.head(ctx, settings, device_key, upload_id)
    headers = tus_headers(**{"Upload-Offset": str(upload.offset),
                             "Upload-Length": str(upload.length),
                             "Cache-Control": "no-store"})
    if upload.entry_id is None and upload.problem is None:
        headers["Upload-Expires"] = http_date(upload.expires_at)
    if upload.entry_id is not None:
        headers["X-Entry-Id"] = str(upload.entry_id)
    return Response(status_code=200, headers=headers)


@router.patch("/uploads/{upload_id}", status_code=204,
              responses={**_TUS_RESPONSES,
                         409: {"description": "Upload-Offset is not where the upload stands."},
                         460: {"description": "Upload-Checksum does not match; the offset did "
                               "not move."}},
              summary="Send bytes from Upload-Offset (tus core, with Upload-Checksum)")
async def patch(upload_id: uuid.UUID, request: Request, ctx: Ctx,
                settings: AppSettings, device_key: DeviceKey) -> Response:
    """`Content-Type: application/offset+octet-stream`, `Upload-Offset`, optionally
    `Upload-Checksum: sha1|sha256 <base64 digest>`. The PATCH that completes the upload
    also stores the media entry (answered in `X-Entry-Id`); an empty PATCH at the final
    offset asks again."""
    _require_tus(request)
    upload = await run_in_threadpool(uploads.start_patch, ctx, settings, device_key,
                                     upload_id, request.headers.get("upload-offset"),
                                     request.headers.get("content-type"))
    checksum = uploads.parse_checksum(request.headers.get("upload-checksum"))
    if upload.offset < upload.length:
        part = await uploads.receive(settings, upload, request.stream(), checksum)
        if part is None:  # the client went away mid-PATCH; nobody reads this answer
            return Response(status_code=400)
        upload = await run_in_threadpool(uploads.accept, ctx, settings, upload.id,
                                         upload.offset, part)
    headers = tus_headers(**{"Upload-Offset": str(upload.offset)})
    if upload.offset == upload.length:
        state = request.app.state
        entry_id = upload.entry_id or (await uploads.finish(
            ctx, settings, state.media_store, state.media_jobs, upload)).id
        headers["X-Entry-Id"] = str(entry_id)
    else:
        headers["Upload-Expires"] = http_date(upload.expires_at)
    return Response(status_code=204, headers=headers)


@router.delete("/uploads/{upload_id}", status_code=204, responses=_TUS_RESPONSES,
               summary="Give up an upload; its bytes are removed (tus termination)")
def terminate(upload_id: uuid.UUID, request: Request, ctx: Ctx, settings: AppSettings,
              device_key: DeviceKey) -> Response:
    _require_tus(request)
    uploads.terminate(ctx, settings, device_key, upload_id)
    return Response(status_code=204, headers=tus_headers())
