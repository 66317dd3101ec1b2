"""A child's own boards, built from photos of their people, places and things.

Photos come in one at a time (`upload_photo`), received and checked exactly as uploaded
photos are (the media path: streamed to the staging area, then
`board_assets.store_board_media`, which calls `photos.check_and_clean_photo`: type sniffed,
size and pixels bounded, EXIF and location removed), and are recorded as this child's. A personal board may show
those photos, and only those (or bytes its earlier versions had). Personal boards are the
child's data: only those who may see the child see them, every read and write is
audited, and they are never in the library.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from app.core.config import Settings
from app.core.context import Context
from app.core.errors import Invalid
from app.models.board import (Board, BoardOut, BoardPhotoOut, BoardSummary, BoardWrite,
                              ChildBoardPhoto)
from app.services import access, audit
from app.services.boards.assets import AssetRefused, store_board_media
from app.services.boards.library import (add_board, board_out, check_asset_refs,
                                         child_photo_keys, summaries)
from app.services.boards.obf import ASSET_KEY
from app.storage import MediaStore

PERSONAL_PHOTO_LICENSE = {"type": "private, all rights reserved",
                          "ext_childvoice_personal_photo": True}


def authorise_upload(ctx: Context, child_id: uuid.UUID) -> None:
    """Before a byte is received: only the allocated worker adds photos for a child."""
    access.child_for(ctx, child_id, access.Need.write)


def upload_photo(ctx: Context, settings: Settings, store: MediaStore, child_id: uuid.UUID,
                 path: Path) -> BoardPhotoOut:
    """Check and store a photo for this child's boards (the allocated worker only)."""
    child = access.child_for(ctx, child_id, access.Need.write)
    ctx.db.commit()  # hand the connection back while the photo is decoded
    try:
        asset = store_board_media(ctx.db, settings, store, "image", path,
                                  max_pixels=settings.media_photo_max_pixels)
    except AssetRefused as exc:
        ctx.db.rollback()
        if exc.problem is not None:
            raise exc.problem from None  # the media pipeline's own 415 or 422
        raise Invalid(f"This photo {exc.reason}.", slug="unsupported-photo",
                      title="Not an accepted photo") from None
    if not ctx.db.exec(select(ChildBoardPhoto).where(ChildBoardPhoto.child_id == child.id,
                                                     ChildBoardPhoto.sha256 == asset.sha256)
                       ).first():
        try:
            with ctx.db.begin_nested():
                ctx.db.add(ChildBoardPhoto(child_id=child.id, sha256=asset.sha256,
                                           uploaded_by=ctx.user.id))
        except IntegrityError:
            pass  # the same photo, uploaded for this child by a request just now
    audit.record(ctx, "board.photo.upload", child_id=child.id, object_type="board_photo",
                 object_id=asset.sha256)
    ctx.db.commit()
    image = {"id": f"photo-{asset.sha256[:12]}", "content_type": asset.content_type,
             "width": asset.width, "height": asset.height, ASSET_KEY: asset.sha256,
             "license": dict(PERSONAL_PHOTO_LICENSE)}
    return BoardPhotoOut(sha256=asset.sha256, image=image)


def create_board(ctx: Context, child_id: uuid.UUID, data: BoardWrite) -> BoardOut:
    """A new personal board for this child (the allocated worker only); never in the
    library. Its images may be this child's uploaded photos, or plain references."""
    child = access.child_for(ctx, child_id, access.Need.write)
    check_asset_refs(ctx.db, None, data, child_photo_keys(ctx.db, child.id))
    board, version = add_board(ctx.db, data, ctx.user.id, owner_child_id=child.id)
    audit.record(ctx, "board.create", child_id=child.id, object_type="board",
                 object_id=board.id)
    ctx.db.commit()
    return board_out(board, version)


def list_boards(ctx: Context, child_id: uuid.UUID) -> list[BoardSummary]:
    child = access.child_for(ctx, child_id, access.Need.read)
    rows = ctx.db.exec(select(Board).where(Board.owner_child_id == child.id)
                       .order_by(Board.created_at, Board.id)).all()
    audit.record(ctx, "board.list", child_id=child.id, object_type="child", object_id=child.id)
    ctx.db.commit()
    return summaries(ctx.db, list(rows))
