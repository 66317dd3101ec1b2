"""Children's records and their allocations."""

from __future__ import annotations

import uuid

from sqlmodel import select

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import Invalid
from app.core.pagination import paginate
from app.models.child import (Allocation, AllocationCreate, AllocationOut, Child, ChildCreate,
                              ChildOut, ChildUpdate)
from app.models.staff import Role, User
from app.services import access, audit
from app.services.access import Need


def child_out(ctx: Context, child: Child) -> ChildOut:
    allocation = access.current_allocation(ctx.db, child.id)
    out = ChildOut.model_validate(child)
    out.allocated_worker_id = allocation.user_id if allocation else None
    return out


def create_child(ctx: Context, data: ChildCreate) -> ChildOut:
    user = access.may_add_child(ctx.actor, data.team_id)
    now = utcnow()
    child = Child(preferred_name=data.preferred_name, date_of_birth=data.date_of_birth,
                  team_id=data.team_id, communication=data.communication.model_dump(mode="json"),
                  board_preferences=data.board_preferences.model_dump(mode="json"),
                  created_by=user.id, created_at=now, updated_at=now)
    ctx.db.add(child)
    ctx.db.flush()
    if user.role == Role.social_worker:
        ctx.db.add(Allocation(child_id=child.id, user_id=user.id, started_at=now,
                              allocated_by=user.id))
    audit.record(ctx, "child.create", child_id=child.id, object_type="child", object_id=child.id)
    ctx.db.commit()
    return child_out(ctx, child)


def list_children(ctx: Context, limit: int, cursor: str | None) -> dict:
    user = access.require_staff(ctx.actor)
    stmt = select(Child).where(access.visible_child_ids_clause(user))
    page = paginate(ctx.db, stmt, sort_col=Child.created_at, id_col=Child.id, limit=limit,
                    cursor=cursor, shape=lambda c: child_out(ctx, c))
    for child in page["items"]:
        audit.record(ctx, "child.list", child_id=child.id, object_type="child",
                     object_id=child.id)
    ctx.db.commit()
    return page


def get_child(ctx: Context, child_id: uuid.UUID) -> ChildOut:
    child = access.child_for(ctx, child_id, Need.read)
    audit.record(ctx, "child.read", child_id=child.id, object_type="child", object_id=child.id)
    ctx.db.commit()
    return child_out(ctx, child)


def update_child(ctx: Context, child_id: uuid.UUID, data: ChildUpdate) -> ChildOut:
    child = access.child_for(ctx, child_id, Need.write)
    changes = data.model_dump(exclude_unset=True, mode="json")
    for name in ("preferred_name", "date_of_birth"):
        if name in changes and changes[name] is None:
            raise Invalid(f"{name} cannot be emptied", field=["body", name])
    if "preferred_name" in changes:
        child.preferred_name = data.preferred_name
    if "date_of_birth" in changes:
        child.date_of_birth = data.date_of_birth
    if data.communication is not None:
        child.communication = data.communication.model_dump(mode="json")
    if data.board_preferences is not None:
        child.board_preferences = data.board_preferences.model_dump(mode="json")
    child.updated_at = utcnow()
    ctx.db.add(child)
    audit.record(ctx, "child.update", child_id=child.id, object_type="child", object_id=child.id)
    ctx.db.commit()
    return child_out(ctx, child)


def allocate(ctx: Context, child_id: uuid.UUID, data: AllocationCreate) -> AllocationOut:
    child = access.child_for(ctx, child_id, Need.allocate)
    worker = ctx.db.get(User, data.user_id)
    if worker is None or not worker.is_active or worker.team_id != child.team_id or \
            worker.role not in (Role.social_worker, Role.team_manager):
        raise Invalid("user_id must name an active worker or manager of the child's team",
                      field=["body", "user_id"])
    now = utcnow()
    current = access.current_allocation(ctx.db, child.id)
    if current is not None and current.user_id == worker.id:
        allocation = current
    else:
        if current is not None:
            current.ended_at = now
            ctx.db.add(current)
            ctx.db.flush()
        allocation = Allocation(child_id=child.id, user_id=worker.id, started_at=now,
                                allocated_by=ctx.user.id)
        ctx.db.add(allocation)
        ctx.db.flush()
    audit.record(ctx, "allocation.create", child_id=child.id, object_type="allocation",
                 object_id=allocation.id)
    ctx.db.commit()
    return _allocation_out(ctx, allocation)


def _allocation_out(ctx: Context, allocation: Allocation) -> AllocationOut:
    out = AllocationOut.model_validate(allocation)
    worker = ctx.db.get(User, allocation.user_id)
    out.worker_name = worker.full_name if worker else None
    return out


def list_allocations(ctx: Context, child_id: uuid.UUID, limit: int, cursor: str | None) -> dict:
    child = access.child_for(ctx, child_id, Need.read)
    page = paginate(ctx.db, select(Allocation).where(Allocation.child_id == child.id),
                    sort_col=Allocation.started_at, id_col=Allocation.id, limit=limit,
                    cursor=cursor, shape=lambda a: _allocation_out(ctx, a))
    audit.record(ctx, "allocation.list", child_id=child.id, object_type="child",
                 object_id=child.id)
    ctx.db.commit()
    return page
