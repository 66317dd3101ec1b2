"""The one place that answers "may this actor touch this child's data, and how?".

- A social worker: everything for the children currently allocated to them.
- A team manager: reads every child of their team, and allocates; no capture or edits.
- An admin: users, teams and the board library; a child's content only when allocated.
- A capture token (child mode): its own session's boards and new entries, nothing else.
- Safeguarding alerts: the allocated worker and the team manager, and no one else.
- Oversight (a child's audit trail, subject access exports, the team's voice report): the
  team manager.
- An enrolled device (a tablet syncing what it captured offline): the device key together
  with a staff token of the worker it is enrolled to, until it is revoked. Its worker, their
  team manager and admins may see and revoke it.

A child the caller may not see answers 404 so its existence does not leak; a child the
caller may see, with an action their role may not take, answers 403.
"""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Any, TypeVar

from sqlmodel import Session, select

from app.core.context import Actor, Context
from app.core.errors import Forbidden, NotFound, Unauthorized
from app.core.security import device_key_matches, hash_device_key
from app.models.capture import CaptureSession
from app.models.child import Allocation, Child
from app.models.staff import Role, User
from app.models.sync import Device

R = TypeVar("R", bound=Any)

CHILD_NOT_FOUND = "No child with this id is visible to you."
DEVICE_NOT_FOUND = "No device with this id is visible to you."


class Need(str, Enum):
    read = "read"            # see the child's record, entries and plan
    write = "write"          # change the record: consents, sessions, entries, plan
    allocate = "allocate"    # choose who holds the child
    safeguard = "safeguard"  # see and acknowledge the child's safeguarding alerts
    oversee = "oversee"      # the child's audit trail, subject access export


def current_allocation(db: Session, child_id: uuid.UUID) -> Allocation | None:
    return db.exec(select(Allocation).where(Allocation.child_id == child_id,
                                            Allocation.ended_at.is_(None))).first()


def holds_child(db: Session, user: User, child_id: uuid.UUID) -> bool:
    allocation = current_allocation(db, child_id)
    return allocation is not None and allocation.user_id == user.id


def _may(user: User, child: Child, holder: bool, need: Need) -> bool:
    """Given that `user` can see `child` (they hold the child, or manage its team)."""
    if need is Need.read:
        return True
    if need is Need.write:
        return holder
    manages = user.role == Role.team_manager and child.team_id == user.team_id
    if need in (Need.allocate, Need.oversee):
        return manages
    if need is Need.safeguard:
        return holder or manages
    return False


_DENIED = {
    Need.write: "Only the worker allocated to this child can change their record.",
    Need.allocate: "Only a manager of the child's team can allocate a worker.",
    Need.safeguard: "Only the allocated worker and the team manager see this child's "
                    "safeguarding alerts.",
    Need.oversee: "Only a manager of the child's team can do this.",
}


def require_staff(actor: Actor) -> User:
    if actor.user is None:
        raise Forbidden("A capture token can only read its own session's boards and add "
                        "entries to its session.", slug="capture-token-scope")
    return actor.user


def require_admin(actor: Actor) -> User:
    user = require_staff(actor)
    if user.role != Role.admin:
        raise Forbidden("Only an admin can do this.")
    return user


def safeguarding_children_clause(user: User):  # noqa: ANN201 - a SQL expression
    """Children whose safeguarding alerts `user` may see: held by them, or of the team
    they manage (the same people as Need.safeguard)."""
    return visible_child_ids_clause(user)


def may_add_child(actor: Actor, team_id: uuid.UUID) -> User:
    """Who may add a child's record: a worker or manager, to their own team. Admins hold
    no children's records."""
    user = require_staff(actor)
    if user.role == Role.admin:
        raise Forbidden("Admins do not hold children's records; a worker or manager of the "
                        "child's team adds the child.")
    if team_id != user.team_id:
        raise Forbidden("You can only add a child to your own team.")
    return user


def team_report_for(actor: Actor, team_id: uuid.UUID | None) -> uuid.UUID:
    """Whose voice has not been heard: a team manager reads it for their own team (the
    team it names, or theirs when none is named). Admins hold no child content and workers
    see their own children only, so both answer 403."""
    user = require_staff(actor)
    if user.role != Role.team_manager:
        raise Forbidden("Only a team manager reads the voice report, for their own team.")
    if team_id is not None and team_id != user.team_id:
        raise Forbidden("You can only read your own team's voice report.")
    if user.team_id is None:
        raise Forbidden("You are not a member of a team, so there is no report to read.")
    return user.team_id


def child_for(ctx: Context, child_id: uuid.UUID, need: Need) -> Child:
    """The child, if the caller may take `need` on them; else 404 (unseen) or 403."""
    user = require_staff(ctx.actor)
    child = ctx.db.get(Child, child_id)
    if child is None:
        raise NotFound(CHILD_NOT_FOUND)
    holder = holds_child(ctx.db, user, child.id)
    manages_team = user.role == Role.team_manager and child.team_id == user.team_id
    if not (holder or manages_team):
        raise NotFound(CHILD_NOT_FOUND)
    if not _may(user, child, holder, need):
        raise Forbidden(_DENIED[need])
    return child


def visible_child_ids_clause(user: User):  # noqa: ANN201 - a SQL expression
    """A WHERE clause on Child limiting a query to the children `user` may see."""
    held = select(Allocation.child_id).where(Allocation.user_id == user.id,
                                             Allocation.ended_at.is_(None))
    if user.role == Role.team_manager:
        return (Child.team_id == user.team_id) | Child.id.in_(held)
    return Child.id.in_(held)


def writable_child_ids_clause(user: User):  # noqa: ANN201 - a SQL expression
    """A WHERE clause on Child limiting a query to the children `user` may capture with:
    the ones allocated to them now (the same rule as Need.write)."""
    return Child.id.in_(select(Allocation.child_id).where(Allocation.user_id == user.id,
                                                          Allocation.ended_at.is_(None)))


def record_for(ctx: Context, model: type[R], record_id: uuid.UUID, need: Need,
               not_found: str) -> R:
    """A staff caller's view of a record that belongs to a child (it has `child_id`): the
    record, if they may take `need` on that child; else 404 with `not_found` whether it is
    missing or its child unseen (so its existence does not leak), or 403 from child_for."""
    require_staff(ctx.actor)
    row = ctx.db.get(model, record_id)
    if row is None:
        raise NotFound(not_found)
    try:
        child_for(ctx, row.child_id, need)
    except NotFound:
        raise NotFound(not_found) from None
    return row


def session_for(ctx: Context, session_id: uuid.UUID, need: Need) -> CaptureSession:
    """A capture session, for its own capture token or for staff with `need` on the child."""
    session = ctx.actor.capture_session
    if session is not None:
        if session.id != session_id:
            raise Forbidden("This capture token belongs to another session.",
                            slug="capture-token-scope")
        return session
    return record_for(ctx, CaptureSession, session_id, need,
                      "No capture session with this id is visible to you.")


# --- enrolled devices ------------------------------------------------------------------

def may_enroll_device(ctx: Context) -> User:
    user = require_staff(ctx.actor)
    if user.role == Role.admin:
        raise Forbidden("Admins do not capture with children, so they do not enroll tablets; "
                        "the worker who will use the tablet enrolls it.")
    return user


def device_for(ctx: Context, device_id: uuid.UUID) -> Device:
    """A device, for its worker, a manager of that worker's team, or an admin (to see it
    and to revoke it); anyone else gets 404."""
    user = require_staff(ctx.actor)
    device = ctx.db.get(Device, device_id)
    if device is None:
        raise NotFound(DEVICE_NOT_FOUND)
    if device.user_id == user.id or user.role == Role.admin:
        return device
    if user.role == Role.team_manager:
        owner = ctx.db.get(User, device.user_id)
        if owner is not None and owner.team_id == user.team_id:
            return device
    raise NotFound(DEVICE_NOT_FOUND)


def visible_devices_clause(user: User):  # noqa: ANN201 - a SQL expression
    """A WHERE clause on Device limiting a query to the devices `user` may see."""
    if user.role == Role.admin:
        return Device.id.is_not(None)
    if user.role == Role.team_manager:
        team = select(User.id).where(User.team_id == user.team_id)
        return (Device.user_id == user.id) | Device.user_id.in_(team)
    return Device.user_id == user.id


def tablet_device(ctx: Context, device_id: uuid.UUID | None,
                  device_key: str | None) -> Device:
    """The enrolled device a tablet acts as: the key must match the device (named by id, or
    found by its key alone when `device_id` is None), the staff token must be the worker's
    it is enrolled to, and it must not be revoked. The row is locked until commit, so a
    revocation and a sync never interleave."""
    user = require_staff(ctx.actor)
    if device_id is None:
        stmt = select(Device).where(Device.key_hash == hash_device_key(device_key or ""))
    else:
        stmt = select(Device).where(Device.id == device_id)
    device = ctx.db.exec(stmt.with_for_update()).first()
    if device is None or not device_key_matches(device_key, device.key_hash):
        raise Unauthorized("The device_id and X-Device-Key do not name an enrolled device. "
                           "Enroll the tablet again (POST /api/v1/devices).",
                           slug="invalid-device-key", title="Unknown device")
    if device.revoked_at is not None:
        raise Forbidden("This device was revoked, so it can no longer sync; nothing in this "
                        "request was stored. Keep the tablet's queue and ask the worker to "
                        "enroll it again if the revocation was a mistake.",
                        slug="device-revoked", title="Device revoked",
                        revoked_at=device.revoked_at.isoformat())
    if device.user_id != user.id:
        raise Forbidden("This device is enrolled to another worker; sign in as that worker "
                        "to sync it.", slug="device-not-yours", title="Not your device")
    return device


def entry_readable(ctx: Context, child_id: uuid.UUID, session_id: uuid.UUID,
                   not_found: str) -> None:
    """May the caller read an entry (or its media) of this child made in this session?
    A capture token: only its own session's. Staff: whoever may read the child. Anything
    else answers 404 with `not_found`, so its existence does not leak."""
    session = ctx.actor.capture_session
    if session is not None:
        if session.id != session_id:
            raise NotFound(not_found)
        return
    try:
        child_for(ctx, child_id, Need.read)
    except NotFound:
        raise NotFound(not_found) from None


# --- the board library ------------------------------------------------------------------

def require_library_admin(actor: Actor) -> User:
    """Library boards are shared by every team and decide which buttons raise alerts: only
    admins add, import, change, archive or restore them."""
    user = require_staff(actor)
    if user.role != Role.admin:
        raise Forbidden("Only an admin changes library boards. To adapt one for a child, copy "
                        "it into their personal boards: POST /boards/{id}/copy.",
                        slug="library-board")
    return user


def require_mark_admin(actor: Actor, buttons: list[str]) -> User:
    """Taking a safeguarding mark off a button (or changing it) is an admin's, on any board."""
    user = require_staff(actor)
    if user.role != Role.admin:
        raise Forbidden("Only an admin can remove or change a safeguarding mark (buttons "
                        f"{', '.join(buttons[:10])}); keep those buttons as they are.",
                        slug="safeguarding-mark")
    return user
