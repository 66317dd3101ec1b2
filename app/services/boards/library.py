"""Symbol boards: the library, and versions that never change once written."""

from __future__ import annotations

import copy
import threading
import uuid
from urllib.parse import quote

from sqlmodel import Session, select

from app.core.context import Context
from app.core.errors import Invalid, NotFound
from app.core.pagination import paginate
from app.models.board import (Board, BoardAsset, BoardOut, BoardSummary, BoardVersion,
                              BoardWrite, ChildBoardPhoto)
from app.services import access, audit
from app.services.boards.assets import asset_by_sha
from app.services.boards.obf import ASSET_KEY, ASSET_URL_KEY, normalise_content
from app.storage import MediaStore

BOARD_NOT_FOUND = "No board with this id is visible to you."
API_PREFIX = "/api/v1"


def _content(data: BoardWrite) -> dict:
    return normalise_content(data.model_dump(mode="json", exclude_none=True))


def asset_refs(content: dict) -> set[str]:
    """The stored bytes (SHA-256 keys) a board version's images and sounds name."""
    return {item[ASSET_KEY] for kind in ("images", "sounds") for item in content.get(kind, [])
            if isinstance(item, dict) and isinstance(item.get(ASSET_KEY), str)}


def check_asset_refs(db: Session, board_id: uuid.UUID | None, data: BoardWrite,
                     also_allowed: set[str] = frozenset()) -> None:
    """Bytes come onto a board only through import or upload, which check them. A board
    written as JSON may keep the bytes its earlier versions had, and name no others (an
    asset key must never work as a pass to someone else's picture)."""
    named = asset_refs(data.model_dump(mode="json"))
    if not named:
        return
    allowed: set[str] = set(also_allowed)
    if board_id is not None:
        for version in db.exec(select(BoardVersion).where(BoardVersion.board_id == board_id)):
            allowed |= asset_refs(version.content)
    if named - allowed:
        raise Invalid(f"An image or sound names stored bytes ({ASSET_KEY}) this board never "
                      "had. Images and sounds with bytes come in through "
                      "POST /boards/import, or for a child's own boards through "
                      "POST /children/{id}/board-photos.", field=["body", "images"])


def child_photo_keys(db: Session, child_id: uuid.UUID | None) -> set[str]:
    """The photos uploaded for this child's own boards (none for a library board)."""
    if child_id is None:
        return set()
    return set(db.exec(select(ChildBoardPhoto.sha256).where(ChildBoardPhoto.child_id == child_id)))


def asset_url(board_id: uuid.UUID, version: int, kind: str, item_id: str) -> str:
    return f"{API_PREFIX}/boards/{board_id}/versions/{version}/{kind}/{quote(item_id, safe='')}"


def board_out(board: Board, version: BoardVersion) -> BoardOut:
    content = copy.deepcopy(version.content)
    for kind in ("images", "sounds"):
        for item in content.get(kind, []):
            if item.get(ASSET_KEY):
                item[ASSET_URL_KEY] = asset_url(board.id, version.version, kind, item["id"])
    return BoardOut(id=board.id, version=version.version, latest_version=board.latest_version,
                    owner_child_id=board.owner_child_id, created_at=version.created_at,
                    **content)


def add_board(db: Session, data: BoardWrite, created_by: uuid.UUID | None,
              owner_child_id: uuid.UUID | None = None,
              board_id: uuid.UUID | None = None) -> tuple[Board, BoardVersion]:
    """Write a new board at version 1 (no access checks: callers decide who may)."""
    board = Board(id=board_id or uuid.uuid4(), name=data.name, owner_child_id=owner_child_id,
                  latest_version=1, created_by=created_by)
    db.add(board)
    db.flush()
    version = BoardVersion(board_id=board.id, version=1, content=_content(data),
                           created_by=created_by)
    db.add(version)
    db.flush()
    return board, version


def create_board(ctx: Context, data: BoardWrite) -> BoardOut:
    access.require_staff(ctx.actor)
    check_asset_refs(ctx.db, None, data)
    board, version = add_board(ctx.db, data, ctx.user.id)
    ctx.db.commit()
    return board_out(board, version)


def visible_board(ctx: Context, board_id: uuid.UUID) -> Board:
    """A board the staff caller may see: the library, or a personal board of a child they
    may see (else 404, so a child's board does not leak)."""
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


_VERSIONS: dict[tuple[uuid.UUID, int], BoardVersion] = {}
_VERSIONS_MAX = 512
_versions_lock = threading.Lock()


def cached_version(db: Session, board_id: uuid.UUID, version: int) -> BoardVersion | None:
    """A board version for reading only (shared by every request of this process): a
    version never changes once written, so a copy is right in every process for as long
    as it lives. A version not found is not remembered (it may be written next)."""
    key = (board_id, version)
    found = _VERSIONS.get(key)
    if found is not None:
        return found
    row = get_version(db, board_id, version)
    if row is None:
        return None
    detached = BoardVersion.model_validate(row.model_dump())
    with _versions_lock:
        if len(_VERSIONS) >= _VERSIONS_MAX:
            _VERSIONS.pop(next(iter(_VERSIONS)))  # the oldest first
        _VERSIONS[key] = detached
    return detached


def list_library(ctx: Context, limit: int, cursor: str | None) -> dict:
    access.require_staff(ctx.actor)
    stmt = select(Board).where(Board.owner_child_id.is_(None))
    return paginate(ctx.db, stmt, sort_col=Board.created_at, id_col=Board.id, limit=limit,
                    cursor=cursor, shape=BoardSummary.model_validate)


def record_child_read(ctx: Context, board: Board, action: str = "board.read") -> None:
    """A personal board is the child's data: its reads are audited (library boards are not)."""
    if board.owner_child_id is not None:
        audit.record(ctx, action, child_id=board.owner_child_id, object_type="board",
                     object_id=board.id)
        ctx.db.commit()


def version_of(ctx: Context, board: Board, version: int | None) -> BoardVersion:
    found = get_version(ctx.db, board.id, version or board.latest_version)
    if found is None:
        raise NotFound(f"This board has no version {version}; its latest is "
                       f"{board.latest_version}.")
    return found


def read_board(ctx: Context, board_id: uuid.UUID, version: int | None = None) -> BoardOut:
    board = visible_board(ctx, board_id)
    found = version_of(ctx, board, version)
    record_child_read(ctx, board)
    return board_out(board, found)


def readable_version(ctx: Context, board_id: uuid.UUID, version: int) -> tuple[Board, BoardVersion]:
    """A board version for staff who may see the board, or for a capture token whose
    session offers exactly that version (child mode sees nothing else)."""
    session = ctx.actor.capture_session
    if session is not None:
        if {"board_id": str(board_id), "version": version} not in session.boards:
            raise NotFound(BOARD_NOT_FOUND)
        board = ctx.db.get(Board, board_id)
        if board is None:
            raise NotFound(BOARD_NOT_FOUND)
    else:
        board = visible_board(ctx, board_id)
    return board, version_of(ctx, board, version)


def replace_board(ctx: Context, board_id: uuid.UUID, data: BoardWrite) -> BoardOut:
    """A new version; every earlier version stays exactly as it was."""
    board = visible_board(ctx, board_id)
    if board.owner_child_id is not None:
        access.child_for(ctx, board.owner_child_id, access.Need.write)
    check_asset_refs(ctx.db, board.id, data, child_photo_keys(ctx.db, board.owner_child_id))
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



def open_board_asset(ctx: Context, store: MediaStore, board_id: uuid.UUID, version: int,
                     kind: str, item_id: str) -> BoardAsset:
    """The stored bytes behind one image or sound of a board version, for staff who may see
    the board and for a session offering that version."""
    board, found = readable_version(ctx, board_id, version)
    item = next((i for i in found.content.get(kind, []) if i.get("id") == item_id), None)
    sha = item.get(ASSET_KEY) if item else None
    asset = asset_by_sha(ctx.db, sha) if sha else None
    if asset is None or not store.exists(asset.sha256):
        raise NotFound(f"Version {version} of this board has no stored {kind[:-1]} "
                       f"'{item_id[:100]}'.")
    if board.owner_child_id is not None:
        audit.record(ctx, f"board.{kind[:-1]}.read", child_id=board.owner_child_id,
                     object_type="board", object_id=board.id)
        ctx.db.commit()
    return asset
