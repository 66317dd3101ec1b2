import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.models.capture import (ENTRY_EXAMPLES, EntryIn, EntryOut, SessionBoardsOut,
                                SessionCreate, SessionDetail, SessionOut, SessionSummary)
from app.models.common import Page
from app.routers.deps import AppSettings, CallerDep, Ctx, Paging
from app.routers.etag import etag_response
from app.services import capture

router = APIRouter(tags=["capture"])


@router.post("/children/{child_id}/sessions", response_model=SessionOut,
             status_code=status.HTTP_201_CREATED,
             summary="Open a capture session and get its child-mode capture token")
def open_session(child_id: uuid.UUID, data: SessionCreate, ctx: Ctx,
                 settings: AppSettings) -> SessionOut:
    return capture.open_session(ctx, settings, child_id, data)


@router.get("/children/{child_id}/sessions", response_model=Page[SessionSummary],
            summary="A child's capture sessions, newest first, with boards and entry counts")
def list_sessions(child_id: uuid.UUID, ctx: Ctx, page: Paging) -> dict:
    return capture.list_sessions(ctx, child_id, page.limit, page.cursor)


@router.get("/sessions/{session_id}", response_model=SessionDetail,
            summary="One capture session read back (without its capture token)")
def get_session(session_id: uuid.UUID, ctx: Ctx) -> SessionDetail:
    return capture.get_session(ctx, session_id)


@router.post("/sessions/{session_id}/end", response_model=SessionOut,
             summary="End a session; its capture token stops working")
def end_session(session_id: uuid.UUID, ctx: Ctx, settings: AppSettings) -> SessionOut:
    return capture.end_session(ctx, settings, session_id)


@router.post("/sessions/{session_id}/capture-token", response_model=SessionOut,
             summary="Issue a new capture token for an open session (the old one stops working)",
             responses={409: {"description": "The session has ended or expired."}})
def new_capture_token(session_id: uuid.UUID, ctx: Ctx) -> SessionOut:
    """For when the tablet was restarted and lost its token: the worker who holds the child
    gets a fresh `capture_token` for the same session; the one before stops working."""
    return capture.reissue_capture_token(ctx, session_id)


@router.get("/sessions/{session_id}/boards", response_model=SessionBoardsOut,
            summary="The boards offered in this session, with the child's preferences",
            responses={304: {"description": "Unchanged since the ETag in If-None-Match."}})
def session_boards(request: Request, session_id: uuid.UUID, ctx: Ctx) -> Response:
    """Everything the tablet needs to show the boards offline; send `If-None-Match` with
    the ETag you hold and an unchanged set answers 304."""
    return etag_response(request, capture.get_session_boards(ctx, session_id))


@router.get("/sessions/{session_id}/entries", response_model=Page[EntryOut],
            summary="A session's entries in the order the child made them (captured_at)")
def session_entries(session_id: uuid.UUID, ctx: Ctx, page: Paging) -> dict:
    return capture.list_session_entries(ctx, session_id, page.limit, page.cursor)


@router.post("/sessions/{session_id}/entries", response_model=EntryOut,
             status_code=status.HTTP_201_CREATED,
             summary="Add what the child said (201), or get back the stored copy (200)",
             responses={200: {"model": EntryOut, "description": "Already stored: this "
                              "client_id was sent before; the stored entry is returned."},
                        409: {"description": "This client_id was used for a different "
                              "entry."}})
async def add_entry(session_id: uuid.UUID,
                    data: Annotated[EntryIn, Body(openapi_examples=ENTRY_EXAMPLES)],
                    caller: CallerDep, response: Response, settings: AppSettings) -> EntryOut:
    entry, created = await run_in_threadpool(
        lambda: capture.add_entry(caller.context(), session_id, data, settings))
    if not created:
        response.status_code = status.HTTP_200_OK
    return entry
