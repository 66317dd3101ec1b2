from typing import Annotated
import uuid

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from app.core.errors import Invalid
from app.core.multipart import ReceivedForm, byte_count, receive_multipart
from app.models.board import (AttributionOut, BoardCopy, BoardOrigin, BoardOut, BoardPhotoOut,
                              BoardSummary, BoardWrite, ImportResult)
from app.models.common import INT32_MAX, Page, SafeText
from app.routers.deps import AppSettings, Ctx, Paging, VersionPath
from app.services.boards import exporter as board_export, importer as board_import
from app.services.boards import library as boards, personal as personal_boards
from app.services.media import capture as media_capture
from app.storage import staging_dir

router = APIRouter(tags=["boards"])

VersionQuery = Annotated[int | None, Query(ge=1, le=INT32_MAX, description="A version; the latest when "
                                                              "left out.")]
_IMPORT_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description":
                            "An .obf board (JSON) or an .obz package (zip), as exported by "
                            "CoughDrop, Cboard, Grid, TD Snap or any Open Board Format app."}},
    "example": {"file": "(the bytes of feelings.obz)"}}}}}


async def _receive(request: Request, settings: AppSettings, limit: int) -> ReceivedForm:
    """The media path's streaming receiver: one `file` part to the staging area, 413 past
    `limit`."""
    form = await receive_multipart(
        request.stream(), request.headers.get("content-type"),
        staging_dir(settings.media_root), file_field="file", limit_for=lambda _: limit,
        too_large=media_capture.too_large,
        content_length=byte_count(request.headers.get("content-length")),
        max_total=limit + 64 * 1024)
    if form.file is None:
        form.discard()
        raise Invalid("Send the file in a multipart part named 'file'.", field=["body", "file"])
    return form


@router.post("/boards", response_model=BoardOut, status_code=status.HTTP_201_CREATED,
             summary="Add a library board (Open Board Format shape; admins)")
def create_board(data: BoardWrite, ctx: Ctx) -> BoardOut:
    return boards.create_board(ctx, data)


@router.post("/boards/import", response_model=ImportResult, status_code=status.HTTP_201_CREATED,
             openapi_extra={"requestBody": _IMPORT_BODY},
             summary="Import boards from another AAC app (.obf or .obz) into the library "
                     "(admins)",
             responses={200: {"description": "Every board was imported before, unchanged: "
                              "nothing new was stored.", "model": ImportResult},
                        413: {"description": "Too large, or a zip bomb."},
                        415: {"description": "Neither an .obf nor an .obz."},
                        422: {"description": "A hostile or unreadable package, or no board "
                              "could be imported (the reasons are listed)."}})
async def import_boards(request: Request, response: Response, ctx: Ctx,
                        settings: AppSettings) -> ImportResult:
    """Multipart form with one `file` part. Every board in a package is imported, even
    ones the root does not link to; a board that cannot be is listed in `skipped` with
    the reason, and the others are still imported. A board imported before from the same
    file (same id and name) is listed in `already_imported` when unchanged, or becomes
    its next version."""
    await run_in_threadpool(board_import.authorise, ctx)  # before a byte is received
    form = await _receive(request, settings, settings.board_upload_max_bytes)
    try:
        # Pictures and sounds are decoded and cleaned: a media job, like uploads.
        result = await request.app.state.media_jobs.run(
            board_import.import_boards, ctx, settings, request.app.state.media_store,
            form.file.path)
    finally:
        await run_in_threadpool(form.discard)
    if not result.imported:
        response.status_code = status.HTTP_200_OK
    return result


_PHOTO_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description":
                            "A photo of the child's own people, places or things."}}},
    "example": {"file": "(the bytes of nan.jpg)"}}}}


@router.post("/children/{child_id}/board-photos", response_model=BoardPhotoOut,
             status_code=status.HTTP_201_CREATED, openapi_extra={"requestBody": _PHOTO_BODY},
             responses={413: {"description": "Past the photo size limit."},
                        415: {"description": "Not an accepted photo type, or not a "
                              "multipart body."}},
             summary="Upload a photo for this child's own boards (cleaned: no EXIF or location)")
async def upload_board_photo(child_id: uuid.UUID, request: Request, ctx: Ctx,
                             settings: AppSettings) -> BoardPhotoOut:
    """Multipart form with one `file` part. Answers an `image` object to put in the
    `images` of a board made with `POST /children/{child_id}/boards`."""
    await run_in_threadpool(personal_boards.authorise_upload, ctx, child_id)
    form = await _receive(request, settings, settings.media_photo_max_bytes)
    try:
        return await request.app.state.media_jobs.run(
            personal_boards.upload_photo, ctx, settings, request.app.state.media_store,
            child_id, form.file.path)
    finally:
        await run_in_threadpool(form.discard)


@router.post("/children/{child_id}/boards", response_model=BoardOut,
             status_code=status.HTTP_201_CREATED,
             summary="Make a personal board for this child (never in the library)")
def create_child_board(child_id: uuid.UUID, data: BoardWrite, ctx: Ctx) -> BoardOut:
    return personal_boards.create_board(ctx, child_id, data)


@router.get("/children/{child_id}/boards", response_model=list[BoardSummary],
            summary="This child's personal boards")
def list_child_boards(child_id: uuid.UUID, ctx: Ctx) -> list[BoardSummary]:
    return personal_boards.list_boards(ctx, child_id)


@router.get("/boards", response_model=Page[BoardSummary], summary="The board library")
def list_boards(
        ctx: Ctx, page: Paging,
        name: Annotated[str | None, Query(max_length=200, description="Boards whose name "
                                          "contains this (any case).")] = None,
        source: Annotated[BoardOrigin | None, Query(description="How the boards came in.")
                          ] = None,
        source_id: Annotated[str | None, Query(max_length=100, description="Their id in the "
                                               "imported file.")] = None,
        owner: Annotated[uuid.UUID | None, Query(description="Who made or imported them "
                                                 "(a user id).")] = None,
        archived: Annotated[bool, Query(description="true: the archived boards instead.")
                            ] = False) -> dict:
    return boards.list_library(ctx, page.limit, page.cursor, name=name, source=source,
                               source_id=source_id, owner=owner, archived=archived)


@router.post("/boards/{board_id}/archive", response_model=BoardOut,
             summary="Archive a library board: kept, but offered for no new session (admins)")
def archive_board(board_id: uuid.UUID, ctx: Ctx) -> BoardOut:
    return boards.set_archived(ctx, board_id, True)


@router.post("/boards/{board_id}/restore", response_model=BoardOut,
             summary="Restore an archived library board (admins)")
def restore_board(board_id: uuid.UUID, ctx: Ctx) -> BoardOut:
    return boards.set_archived(ctx, board_id, False)


@router.post("/boards/{board_id}/copy", response_model=BoardOut,
             status_code=status.HTTP_201_CREATED,
             summary="Copy a board into a child's personal boards, to adapt it for them")
def copy_board(board_id: uuid.UUID, data: BoardCopy, ctx: Ctx) -> BoardOut:
    return boards.copy_board(ctx, board_id, data)


@router.get("/boards/{board_id}", response_model=BoardOut, summary="A board, latest version")
def get_board(board_id: uuid.UUID, ctx: Ctx) -> BoardOut:
    return boards.read_board(ctx, board_id)


@router.put("/boards/{board_id}", response_model=BoardOut,
            summary="Save a new version of a board (earlier versions never change)",
            description="Library boards: admins only. Personal boards: the child's allocated "
                        "worker. Removing or changing a safeguarding mark "
                        "(`ext_childvoice_safeguarding`) takes an admin and a "
                        "`change_reason`.")
def replace_board(board_id: uuid.UUID, data: BoardWrite, ctx: Ctx) -> BoardOut:
    return boards.replace_board(ctx, board_id, data)


@router.get("/boards/{board_id}/versions/{version}", response_model=BoardOut,
            summary="A board at one exact version")
def get_board_version(board_id: uuid.UUID, version: VersionPath, ctx: Ctx) -> BoardOut:
    return boards.read_board(ctx, board_id, version)


@router.get("/boards/{board_id}/export.obf", summary="Export one board as an .obf file",
            response_class=JSONResponse,
            responses={200: {"content": {"application/json": {}}}})
def export_obf(board_id: uuid.UUID, ctx: Ctx, request: Request,
               version: VersionQuery = None) -> JSONResponse:
    content = board_export.export_obf(ctx, request.app.state.media_store, board_id, version)
    return JSONResponse(content, headers={
        "Content-Disposition": f'attachment; filename="board-{board_id}.obf"',
        "Cache-Control": "private, no-store"})


@router.get("/boards/{board_id}/export.obz", response_class=FileResponse,
            summary="Export a board and the boards it links to as an .obz package",
            responses={200: {"content": {"application/zip": {}}}})
def export_obz(board_id: uuid.UUID, ctx: Ctx, settings: AppSettings, request: Request,
               version: VersionQuery = None) -> FileResponse:
    path = board_export.export_obz(ctx, settings, request.app.state.media_store, board_id,
                                   version)
    return FileResponse(path, media_type="application/zip",
                        filename=f"board-{board_id}.obz",
                        headers={"Cache-Control": "private, no-store"},
                        background=BackgroundTask(path.unlink, missing_ok=True))


@router.get("/boards/{board_id}/attribution", response_model=AttributionOut,
            summary="The attributions a document built from this board must show")
def board_attribution(board_id: uuid.UUID, ctx: Ctx,
                      version: VersionQuery = None) -> AttributionOut:
    return board_export.attribution(ctx, board_id, version)


def serve_board_asset(ctx: Ctx, request: Request, board_id: uuid.UUID, version: int, kind: str,
           item_id: str) -> StreamingResponse:
    store = request.app.state.media_store
    asset = boards.open_board_asset(ctx, store, board_id, version, kind, item_id)
    # A board version never changes, so neither do its bytes; private to this caller.
    return StreamingResponse(store.open_range(asset.sha256), media_type=asset.content_type,
                             headers={
        "Content-Length": str(asset.bytes), "ETag": f'"{asset.sha256}"',
        "Cache-Control": "private, max-age=86400",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox"})


@router.get("/boards/{board_id}/versions/{version}/images/{image_id}",
            response_class=StreamingResponse, summary="An image a board version carries",
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}})
def board_image(board_id: uuid.UUID, version: VersionPath,
                image_id: Annotated[SafeText, Path(max_length=100)], ctx: Ctx,
                request: Request) -> StreamingResponse:
    return serve_board_asset(ctx, request, board_id, version, "images", image_id)


@router.get("/boards/{board_id}/versions/{version}/sounds/{sound_id}",
            response_class=StreamingResponse, summary="A sound a board version carries",
            responses={200: {"content": {"audio/mpeg": {}}}})
def board_sound(board_id: uuid.UUID, version: VersionPath,
                sound_id: Annotated[SafeText, Path(max_length=100)], ctx: Ctx,
                request: Request) -> StreamingResponse:
    return serve_board_asset(ctx, request, board_id, version, "sounds", sound_id)
