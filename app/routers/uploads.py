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


def _header(name: str, description: str, *, required: bool = False,
            schema: dict | None = None) -> dict:
    return {"name": name, "in": "header", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


_BYTES = {"type": "integer", "minimum": 0}
_TUS_RESUMABLE = _header("Tus-Resumable", "The tus version: 1.0.0.", required=True,
                         schema={"type": "string", "enum": ["1.0.0"]})
_TUS_ANSWER = {"Tus-Resumable": {"description": "1.0.0", "schema": {"type": "string"}}}
_OFFSET_ANSWER = {"Upload-Offset": {"description": "Bytes the server holds.",
                                    "schema": _BYTES}}
_EXPIRES_ANSWER = {"Upload-Expires": {"description": "When an unfinished upload expires "
                                      "(HTTP date).", "schema": {"type": "string"}}}
_TUS_RESPONSES = {412: {"description": "Tus-Resumable is missing or not 1.0.0."},
                  404: {"description": "No such upload of this device (or it was finished, "
                        "terminated or expired)."}}


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


@router.post("/uploads/", status_code=201, summary="Create a resumable upload of a photo or "
             "recording (tus creation)",
             responses={**_TUS_RESPONSES,
                        201: {"description": "Created; PATCH the bytes to `Location`.",
                              "headers": {"Location": {"description": "The upload's URL.",
                                                       "schema": {"type": "string"}},
                                          **_TUS_ANSWER, **_OFFSET_ANSWER,
                                          **_EXPIRES_ANSWER}},
                        400: {"description": "Upload-Length or Upload-Metadata unreadable."},
                        409: {"description": "The session named has not reached the server "
                              "yet (sync it first), or client_id was used for another upload."},
                        413: {"description": "Upload-Length is past the kind's limit."}},
             openapi_extra={"parameters": [
                 _TUS_RESUMABLE,
                 _header("Upload-Length", "The file's size in bytes.", required=True,
                         schema=_BYTES),
                 _header("Upload-Metadata", "Comma-separated `key base64(value)`: "
                         "session_id or session_client_id, client_id, kind, captured_at, "
                         "source, filename; optionally prompt, topic, entry_client_id.",
                         required=True)]})
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


@router.head("/uploads/{upload_id}", summary="Where an upload stands: Upload-Offset and "
             "Upload-Length",
             responses={**_TUS_RESPONSES, 200: {"description": "Where it stands (no body).",
                                                "headers": {
                 **_TUS_ANSWER, **_OFFSET_ANSWER, **_EXPIRES_ANSWER,
                 "Upload-Length": {"description": "The file's size.", "schema": _BYTES},
                 "X-Entry-Id": {"description": "The media entry, once the upload is stored.",
                                "schema": {"type": "string", "format": "uuid"}}}}},
             openapi_extra={"parameters": [_TUS_RESUMABLE]})
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
                         204: {"description": "Accepted.", "headers": {
                             **_TUS_ANSWER, **_OFFSET_ANSWER, **_EXPIRES_ANSWER,
                             "X-Entry-Id": {"description": "The media entry the last byte "
                                            "made.", "schema": {"type": "string",
                                                                "format": "uuid"}}}},
                         400: {"description": "Upload-Offset or Upload-Checksum unreadable."},
                         409: {"description": "Upload-Offset is not where the upload stands."},
                         413: {"description": "More bytes than the upload has left."},
                         415: {"description": "Not application/offset+octet-stream, or the "
                               "finished file is not an accepted photo or recording."},
                         460: {"description": "Upload-Checksum does not match; the offset did "
                               "not move."}},
              openapi_extra={
                  "parameters": [
                      _TUS_RESUMABLE,
                      _header("Upload-Offset", "Where these bytes start.", required=True,
                              schema=_BYTES),
                      _header("Upload-Checksum", "`sha1|sha256 <base64 digest>` of this "
                              "PATCH's bytes.")],
                  "requestBody": {"required": True, "content": {
                      "application/offset+octet-stream": {
                          "schema": {"type": "string", "format": "binary"},
                          "example": "(the next bytes of the file)"}}}},
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
               summary="Give up an upload; its bytes are removed (tus termination)",
               openapi_extra={"parameters": [_TUS_RESUMABLE]})
def terminate(upload_id: uuid.UUID, request: Request, ctx: Ctx, settings: AppSettings,
              device_key: DeviceKey) -> Response:
    _require_tus(request)
    uploads.terminate(ctx, settings, device_key, upload_id)
    return Response(status_code=204, headers=tus_headers())
