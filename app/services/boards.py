"""Symbol boards: the library, and versions that never change once written."""

from __future__ import annotations

import uuid

from sqlmodel import Session, select

from app.core.context import Context
from app.core.errors import Invalid, NotFound
from app.core.pagination import paginate
from app.models.board import Board, BoardOut, BoardSummary, BoardVersion, BoardWrite
from app.services import access, audit

BOARD_NOT_FOUND = "No board with this id is visible to you."


def _content(data: BoardWrite) -> dict:
    return data.model_dump(mode="json", exclude_none=True)


def board_out(board: Board, version: BoardVersion) -> BoardOut:
    return BoardOut(id=board.id, version=version.version, latest_version=board.latest_version,
                    owner_child_id=board.owner_child_id, created_at=version.created_at,
                    **version.content)


def add_board(db: Session, data: BoardWrite, created_by: uuid.UUID | None,
              owner_child_id: uuid.UUID | None = None) -> tuple[Board, BoardVersion]:
    board = Board(name=data.name, owner_child_id=owner_child_id, latest_version=1,
                  created_by=created_by)
    db.add(board)
    db.flush()
    version = BoardVersion(board_id=board.id, version=1, content=_content(data),
                           created_by=created_by)
    db.add(version)
    db.flush()
    return board, version


def create_board(ctx: Context, data: BoardWrite) -> BoardOut:
    access.require_staff(ctx.actor)
    board, version = add_board(ctx.db, data, ctx.user.id)
    ctx.db.commit()
    return board_out(board, version)


def _visible_board(ctx: Context, board_id: uuid.UUID) -> Board:
    access.require_staff(ctx.actor)
    board = ctx.db.get(Board, board_id)
    if board is None:
        raise NotFound(BOARD_NOT_FOUND)
    if board.owner_child_id is not None:
        try:
            access.child_for(ctx, board.owner_child_id, access.Need.read)
        except NotFound:
            raise NotFound(BOARD_NOT_FOUND) from None
    return board


def get_version(db: Session, board_id: uuid.UUID, version: int) -> BoardVersion | None:
    return db.exec(select(BoardVersion).where(BoardVersion.board_id == board_id,
                                              BoardVersion.version == version)).first()


def list_library(ctx: Context, limit: int, cursor: str | None) -> dict:
    access.require_staff(ctx.actor)
    stmt = select(Board).where(Board.owner_child_id.is_(None))
    return paginate(ctx.db, stmt, sort_col=Board.created_at, id_col=Board.id, limit=limit,
                    cursor=cursor, shape=BoardSummary.model_validate)


def read_board(ctx: Context, board_id: uuid.UUID, version: int | None = None) -> BoardOut:
    board = _visible_board(ctx, board_id)
    found = get_version(ctx.db, board.id, version or board.latest_version)
    if found is None:
        raise NotFound(f"This board has no version {version}; its latest is "
                       f"{board.latest_version}.")
    if board.owner_child_id is not None:
        # A child's own board (photos of their people and places) is their data.
        audit.record(ctx, "board.read", child_id=board.owner_child_id, object_type="board",
                     object_id=board.id)
        ctx.db.commit()
    return board_out(board, found)


def replace_board(ctx: Context, board_id: uuid.UUID, data: BoardWrite) -> BoardOut:
    """A new version; every earlier version stays exactly as it was."""
    board = _visible_board(ctx, board_id)
    if board.owner_child_id is not None:
        access.child_for(ctx, board.owner_child_id, access.Need.write)
    # Lock the board row so two editors cannot both write version n+1.
    locked = ctx.db.exec(select(Board).where(Board.id == board.id).with_for_update()).one()
    locked.latest_version += 1
    locked.name = data.name
    version = BoardVersion(board_id=locked.id, version=locked.latest_version,
                           content=_content(data), created_by=ctx.user.id)
    ctx.db.add(locked)
    ctx.db.add(version)
    if locked.owner_child_id is not None:
        ctx.db.flush()
        audit.record(ctx, "board.update", child_id=locked.owner_child_id, object_type="board",
                     object_id=locked.id)
    ctx.db.commit()
    return board_out(locked, version)


def boards_for_session(ctx: Context, child_id: uuid.UUID,
                       board_ids: list[uuid.UUID]) -> list[dict]:
    """Pin the latest version of each board offered in a new session."""
    pinned = []
    for i, board_id in enumerate(dict.fromkeys(board_ids)):
        board = ctx.db.get(Board, board_id)
        if board is None or board.owner_child_id not in (None, child_id):
            raise Invalid(f"board_ids[{i}] names no board available to this child",
                          field=["body", "board_ids", i])
        pinned.append({"board_id": str(board.id), "version": board.latest_version})
    return pinned


def session_boards(db: Session, pinned: list[dict]) -> list[BoardOut]:
    out = []
    for ref in pinned:
        board = db.get(Board, uuid.UUID(ref["board_id"]))
        version = get_version(db, board.id, ref["version"])
        out.append(board_out(board, version))
    return out

