from typing import Annotated
import uuid

from fastapi import APIRouter, Path, status

from app.models.board import BoardOut, BoardSummary, BoardWrite
from app.models.common import Page
from app.routers.deps import Ctx, Paging
from app.services import boards

router = APIRouter(tags=["boards"])


@router.post("/boards", response_model=BoardOut, status_code=status.HTTP_201_CREATED,
             summary="Add a library board (Open Board Format shape)")
def create_board(data: BoardWrite, ctx: Ctx) -> BoardOut:
    return boards.create_board(ctx, data)


@router.get("/boards", response_model=Page[BoardSummary], summary="The board library")
def list_boards(ctx: Ctx, page: Paging) -> dict:
    return boards.list_library(ctx, page.limit, page.cursor)


@router.get("/boards/{board_id}", response_model=BoardOut, summary="A board, latest version")
def get_board(board_id: uuid.UUID, ctx: Ctx) -> BoardOut:
    return boards.read_board(ctx, board_id)


@router.put("/boards/{board_id}", response_model=BoardOut,
            summary="Save a new version of a board (earlier versions never change)")
def replace_board(board_id: uuid.UUID, data: BoardWrite, ctx: Ctx) -> BoardOut:
    return boards.replace_board(ctx, board_id, data)


@router.get("/boards/{board_id}/versions/{version}", response_model=BoardOut,
            summary="A board at one exact version")
def get_board_version(board_id: uuid.UUID, version: Annotated[int, Path(ge=1)], ctx: Ctx) -> BoardOut:
    return boards.read_board(ctx, board_id, version)
