"""Enrolled devices: the tablets a worker captures on, offline when there is no signal.

Enrollment gives a device id and a device key (shown once, kept as a hash). Syncing needs
the key together with a current staff token of the same worker, so a lost tablet is
useless without the worker's sign-in, and a revoked one is refused even with it. A tablet
may start sessions offline for `device_offline_hours` after it last reached the server.
"""

from __future__ import annotations

import uuid

from sqlalchemy import and_
from sqlmodel import select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Context
from app.core.pagination import paginate
from app.core.security import new_device_key
from app.models.board import Board, BoardVersion
from app.models.child import Child
from app.models.sync import (ChildBoards, Device, DeviceBoardsOut, DeviceCreate, DeviceEnrolled,
                             DeviceOut, DeviceRevoke)
from app.services import access, audit
from app.services.boards import library as boards
from app.services.sync.batch import offline_until


def device_out(settings: Settings, device: Device) -> DeviceOut:
    revoked = device.revoked_at is not None
    return DeviceOut(id=device.id, user_id=device.user_id, name=device.name,
                     status="revoked" if revoked else "active", created_at=device.created_at,
                     last_seen_at=device.last_seen_at,
                     offline_until=None if revoked else offline_until(settings, device),
                     revoked_at=device.revoked_at, revoked_by=device.revoked_by,
                     revoked_reason=device.revoked_reason)


def enroll(ctx: Context, settings: Settings, data: DeviceCreate) -> DeviceEnrolled:
    user = access.may_enroll_device(ctx)
    key, key_hash = new_device_key()
    now = utcnow()
    device = Device(user_id=user.id, name=data.name, key_hash=key_hash, created_at=now,
                    last_seen_at=now)
    ctx.db.add(device)
    ctx.db.flush()
    audit.record(ctx, "device.enroll", object_type="device", object_id=device.id)
    ctx.db.commit()
    return DeviceEnrolled(**device_out(settings, device).model_dump(), device_key=key)


def list_devices(ctx: Context, settings: Settings, limit: int, cursor: str | None) -> dict:
    user = access.require_staff(ctx.actor)
    stmt = select(Device).where(access.visible_devices_clause(user))
    return paginate(ctx.db, stmt, sort_col=Device.created_at, id_col=Device.id, limit=limit,
                    cursor=cursor, shape=lambda d: device_out(settings, d))


def get_device(ctx: Context, settings: Settings, device_id: uuid.UUID) -> DeviceOut:
    return device_out(settings, access.device_for(ctx, device_id))


def revoke(ctx: Context, settings: Settings, device_id: uuid.UUID,
           data: DeviceRevoke | None) -> DeviceOut:
    """Revoke a device (its worker, their team manager, an admin). Its key stops working at
    once, even for batches it captured before; revoking twice keeps the first revocation."""
    access.device_for(ctx, device_id)
    # Lock the row, so a sync in flight either finishes before or is refused after.
    device = ctx.db.exec(select(Device).where(Device.id == device_id).with_for_update()).one()
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        device.revoked_by = ctx.user.id
        device.revoked_reason = data.reason if data else None
        ctx.db.add(device)
        audit.record(ctx, "device.revoke", object_type="device", object_id=device.id)
    ctx.db.commit()
    return device_out(settings, device)


def _latest_boards(ctx: Context, where) -> list:  # noqa: ANN001
    rows = ctx.db.exec(select(Board, BoardVersion)
                       .join(BoardVersion, and_(BoardVersion.board_id == Board.id,
                                                BoardVersion.version == Board.latest_version))
                       .where(where).order_by(Board.created_at, Board.id))
    return [(board, boards.board_out(board, version)) for board, version in rows]


def device_boards(ctx: Context, settings: Settings, device_id: uuid.UUID,
                  device_key: str | None) -> DeviceBoardsOut:
    """Everything the tablet needs to offer boards offline: for each child its worker holds,
    their board preferences and personal boards; and the library. Latest versions only
    (a session pins the versions it was offered when it reaches the server)."""
    device = access.tablet_device(ctx, device_id, device_key)
    held = list(ctx.db.exec(select(Child).where(access.writable_child_ids_clause(ctx.user))
                            .order_by(Child.created_at, Child.id)))
    personal: dict[uuid.UUID, list] = {c.id: [] for c in held}
    if held:
        for board, out in _latest_boards(ctx, Board.owner_child_id.in_(list(personal))):
            personal[board.owner_child_id].append(out)
    library = [out for _, out in _latest_boards(ctx, and_(Board.owner_child_id.is_(None),
                                                          Board.archived_at.is_(None)))]
    device.last_seen_at = max(device.last_seen_at, utcnow())
    ctx.db.add(device)
    for child in held:
        audit.record(ctx, "device.boards", child_id=child.id, object_type="device",
                     object_id=device.id)
    ctx.db.commit()
    return DeviceBoardsOut(device_id=device.id, children=[
        ChildBoards(child_id=c.id, preferred_name=c.preferred_name,
                    board_preferences=c.board_preferences, boards=personal[c.id])
        for c in held], library=library)
