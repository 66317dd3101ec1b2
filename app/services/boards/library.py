"""Symbol boards: the library, and versions that never change once written."""

from __future__ import annotations

import copy
import hashlib
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlmodel import Session, func, select

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import Invalid, NotFound
from app.core.pagination import paginate
from app.models.board import (Board, BoardAsset, BoardContent, BoardCopy, BoardOrigin, BoardOut,
                              BoardSummary, BoardVersion, BoardWrite, ChildBoardPhoto)
from app.models.staff import User
from app.services import access, audit
from app.services.boards.assets import asset_by_sha
from app.services.boards.obf import (ASSET_KEY, ASSET_URL_KEY, RESERVED_BOARD_KEYS,
                                     normalise_content)
from app.storage import MediaStore

BOARD_NOT_FOUND = "No board with this id is visible to you."
API_PREFIX = "/api/v1"
MARK = "ext_childvoice_safeguarding"


def stored_content(data: BoardContent) -> dict:
    """A board's content as it is stored (and compared, on a re-import)."""
    return normalise_content(data.model_dump(mode="json", exclude_none=True))


def asset_refs(content: dict) -> set[str]:
    """The stored bytes (SHA-256 keys) a board version's images and sounds name."""
    return {item[ASSET_KEY] for kind in ("images", "sounds") for item in content.get(kind, [])
            if isinstance(item, dict) and isinstance(item.get(ASSET_KEY), str)}


def check_asset_refs(db: Session, board_id: uuid.UUID | None, data: BoardContent,
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
    # Fields the server answers are never taken from stored content (versions written
    # before such fields were refused still read).
    content = {k: v for k, v in copy.deepcopy(version.content).items()
               if k not in RESERVED_BOARD_KEYS}
    for kind in ("images", "sounds"):
        for item in content.get(kind, []):
            if item.get(ASSET_KEY):
                item[ASSET_URL_KEY] = asset_url(board.id, version.version, kind, item["id"])
    return BoardOut(id=board.id, version=version.version, latest_version=board.latest_version,
                    owner_child_id=board.owner_child_id, created_at=version.created_at,
                    created_by=version.created_by, origin=board.origin,
                    source_id=board.source_id, copy_of_board_id=board.copy_of_board_id,
                    copy_of_version=board.copy_of_version, archived_at=board.archived_at,
                    import_notes=version.notes or [], change_reason=version.change_reason,
                    safeguarding_changes=version.safeguarding_changes or [], **content)


def add_board(db: Session, data: BoardContent, created_by: uuid.UUID | None,
              owner_child_id: uuid.UUID | None = None, board_id: uuid.UUID | None = None, *,
              origin: BoardOrigin = BoardOrigin.made, source_id: str | None = None,
              notes: list[str] | None = None,
              copy_of: BoardVersion | None = None) -> tuple[Board, BoardVersion]:
    """Write a new board at version 1 (no access checks: callers decide who may)."""
    board = Board(id=board_id or uuid.uuid4(), name=data.name, owner_child_id=owner_child_id,
                  latest_version=1, created_by=created_by, origin=origin.value,
                  source_id=source_id,
                  copy_of_board_id=copy_of.board_id if copy_of else None,
                  copy_of_version=copy_of.version if copy_of else None)
    db.add(board)
    db.flush()
    version = BoardVersion(board_id=board.id, version=1, content=stored_content(data),
                           created_by=created_by, notes=notes or [])
    db.add(version)
    db.flush()
    return board, version


def add_version(db: Session, board: Board, data: BoardContent, created_by: uuid.UUID | None,
                *, notes: list[str] | None = None, change_reason: str | None = None,
                safeguarding_changes: list[dict] | None = None) -> tuple[Board, BoardVersion]:
    """The board's next version; every earlier version stays exactly as it was."""
    # Lock the board row so two editors cannot both write version n+1.
    locked = db.exec(select(Board).where(Board.id == board.id).with_for_update()).one()
    locked.latest_version += 1
    locked.name = data.name
    version = BoardVersion(board_id=locked.id, version=locked.latest_version,
                           content=stored_content(data), created_by=created_by, notes=notes or [],
                           change_reason=change_reason,
                           safeguarding_changes=safeguarding_changes or [])
    db.add(locked)
    db.add(version)
    db.flush()
    return locked, version


# --- safeguarding marks ----------------------------------------------------------------

def _marked(value: Any) -> bool:
    return value is not None and value is not False


def mark_changes(before: dict, after: dict) -> list[dict]:
    """Every button whose safeguarding mark differs between two versions' content (a
    marked button that is gone counts: its mark is gone with it)."""
    old = {b.get("id"): b.get(MARK) for b in before.get("buttons", []) if isinstance(b, dict)}
    new = {b.get("id"): b.get(MARK) for b in after.get("buttons", []) if isinstance(b, dict)}
    changes = []
    for button_id in list(old) + [i for i in new if i not in old]:
        was, now = old.get(button_id), new.get(button_id)
        if (_marked(was) or _marked(now)) and was != now:
            changes.append({"button_id": button_id, "before": was, "after": now})
    return changes


def weakened_marks(changes: list[dict]) -> list[str]:
    """The buttons whose mark is removed or changed to anything but `true` (the value that
    raises an alert): adding a mark, or making one `true`, weakens nothing."""
    return [c["button_id"] for c in changes if _marked(c["before"]) and c["after"] is not True]


def mark_events(changes: list[dict]) -> list[tuple[str, None, str, str]]:
    """One audit event per library-board button whose mark changed, naming the button."""
    return [(_mark_action(c), None, "board_button", _mark_event_id(str(c["button_id"])))
            for c in changes]


def _mark_event_id(button_id: str) -> str:
    if len(button_id) <= 64:
        return button_id
    return f"{button_id[:47]}~{hashlib.sha256(button_id.encode()).hexdigest()[:16]}"


def _mark_action(change: dict) -> str:
    if not _marked(change["before"]):
        return "board.safeguarding_mark.add"
    return "board.safeguarding_mark.remove" if not _marked(change["after"]) else \
        "board.safeguarding_mark.change"


def create_board(ctx: Context, data: BoardWrite) -> BoardOut:
    access.require_library_admin(ctx.actor)
    check_asset_refs(ctx.db, None, data)
    board, version = add_board(ctx.db, data, ctx.user.id)
    audit.record(ctx, "board.create", object_type="board", object_id=board.id)
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


def summaries(db: Session, boards: list[Board]) -> list[BoardSummary]:
    """Boards as lists show them, with the name of who made or imported each."""
    ids = {b.created_by for b in boards if b.created_by is not None}
    names = {user.id: user.full_name for user in
             db.exec(select(User).where(User.id.in_(ids)))} if ids else {}
    return [BoardSummary.model_validate(b).model_copy(
        update={"created_by_name": names.get(b.created_by)}) for b in boards]


def list_library(ctx: Context, limit: int, cursor: str | None, *, name: str | None = None,
                 source: BoardOrigin | None = None, source_id: str | None = None,
                 owner: uuid.UUID | None = None, archived: bool = False) -> dict:
    """The library, oldest first; archived boards only when asked for (`archived`)."""
    access.require_staff(ctx.actor)
    stmt = select(Board).where(Board.owner_child_id.is_(None),
                               Board.archived_at.is_not(None) if archived
                               else Board.archived_at.is_(None))
    if name:
        stmt = stmt.where(func.lower(Board.name).contains(name.lower(), autoescape=True))
    if source is not None:
        stmt = stmt.where(Board.origin == source.value)
    if source_id:
        stmt = stmt.where(Board.source_id == source_id)
    if owner is not None:
        stmt = stmt.where(Board.created_by == owner)
    page = paginate(ctx.db, stmt, sort_col=Board.created_at, id_col=Board.id, limit=limit,
                    cursor=cursor)
    return {"items": summaries(ctx.db, page["items"]), "next_cursor": page["next_cursor"]}


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
        if not any(ref["board_id"] == str(board_id) and ref["version"] == version
                   for ref in session.boards):
            raise NotFound(BOARD_NOT_FOUND)
        board = ctx.db.get(Board, board_id)
        if board is None:
            raise NotFound(BOARD_NOT_FOUND)
    else:
        board = visible_board(ctx, board_id)
    return board, version_of(ctx, board, version)


def replace_board(ctx: Context, board_id: uuid.UUID, data: BoardWrite) -> BoardOut:
    """A new version; every earlier version stays exactly as it was. Library boards are
    the admins'; a personal board is its child's allocated worker's. Removing or changing a
    safeguarding mark takes an admin and a reason, whatever the board."""
    board = visible_board(ctx, board_id)
    if board.owner_child_id is None:
        access.require_library_admin(ctx.actor)
    else:
        access.child_for(ctx, board.owner_child_id, access.Need.write)
    check_asset_refs(ctx.db, board.id, data, child_photo_keys(ctx.db, board.owner_child_id))
    latest = version_of(ctx, board, None)
    changes = mark_changes(latest.content, stored_content(data))
    weakened = weakened_marks(changes)
    if weakened:
        access.require_mark_admin(ctx.actor, weakened)
        buttons = ", ".join(weakened[:10])
        if not data.change_reason or not data.change_reason.strip():
            raise Invalid(f"Removing or changing a safeguarding mark needs a reason: say why in "
                          f"change_reason (buttons {buttons}).", field=["body", "change_reason"])
    locked, version = add_version(ctx.db, board, data, ctx.user.id,
                                  change_reason=data.change_reason,
                                  safeguarding_changes=changes)
    child_id = locked.owner_child_id
    events = [("board.update", child_id, "board", locked.id)]
    if child_id is None:  # a personal board's button ids may name the child's people
        events += mark_events(changes)
    audit.record_many(ctx, events)
    ctx.db.commit()
    return board_out(locked, version)


def _library_board(ctx: Context, board_id: uuid.UUID) -> Board:
    """A library board, for an admin (a worker is refused; a personal board is not one)."""
    board = visible_board(ctx, board_id)
    if board.owner_child_id is not None:
        raise Invalid("Only library boards are archived; this is a child's personal board.",
                      slug="not-a-library-board", title="Not a library board")
    access.require_library_admin(ctx.actor)
    return board


def set_archived(ctx: Context, board_id: uuid.UUID, archived: bool) -> BoardOut:
    """Archive (or restore) a library board: never deleted, since entries name its
    versions, but no longer offered for new sessions, on tablets or in the library list."""
    board = _library_board(ctx, board_id)
    locked = ctx.db.exec(select(Board).where(Board.id == board.id).with_for_update()).one()
    if (locked.archived_at is not None) != archived:
        locked.archived_at = utcnow() if archived else None
        locked.archived_by = ctx.user.id if archived else None
        ctx.db.add(locked)
        ctx.db.flush()
        audit.record(ctx, "board.archive" if archived else "board.restore",
                     object_type="board", object_id=locked.id)
    latest = version_of(ctx, locked, None)
    ctx.db.commit()
    return board_out(locked, latest)


def copy_board(ctx: Context, board_id: uuid.UUID, data: BoardCopy) -> BoardOut:
    """A library board (or one of the child's own) copied into a child's personal boards,
    for their allocated worker to adapt. The copy keeps the pictures and the safeguarding
    marks; only an admin could take a mark off."""
    child = access.child_for(ctx, data.child_id, access.Need.write)
    board = visible_board(ctx, board_id)
    if board.owner_child_id not in (None, child.id):
        raise Invalid("A child's personal board is copied only for that same child.",
                      field=["body", "child_id"])
    if board.archived_at is not None:
        raise Invalid("This library board is archived: copy another, or ask an admin to "
                      "restore it.", slug="board-archived", title="Board archived")
    source = version_of(ctx, board, data.version)
    content = copy.deepcopy(source.content)
    if data.name:
        content["name"] = data.name
    copied, version = add_board(ctx.db, BoardContent.model_validate(content), ctx.user.id,
                                owner_child_id=child.id, origin=BoardOrigin.copy,
                                copy_of=source)
    audit.record(ctx, "board.copy", child_id=child.id, object_type="board",
                 object_id=copied.id)
    ctx.db.commit()
    return board_out(copied, version)


def boards_for_session(ctx: Context, child_id: uuid.UUID, board_ids: list[uuid.UUID], *,
                       started_at: datetime | None = None) -> list[dict]:
    """Pin the latest version of each board offered in a new session. An archived board is
    not offered, unless the session (recorded offline) started before it was archived."""
    pinned = []
    for i, board_id in enumerate(dict.fromkeys(board_ids)):
        board = ctx.db.get(Board, board_id)
        if board is None or board.owner_child_id not in (None, child_id):
            raise Invalid(f"board_ids[{i}] names no board available to this child",
                          field=["body", "board_ids", i])
        if board.archived_at is not None and (started_at is None or
                                              started_at >= board.archived_at):
            raise Invalid(f"board_ids[{i}] names the board '{board.name}', which is archived "
                          "and no longer offered for new sessions: choose another, or ask an "
                          "admin to restore it.", field=["body", "board_ids", i],
                          slug="board-archived", title="Board archived")
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
