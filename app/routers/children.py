import uuid

from fastapi import APIRouter, status

from app.models.child import (AllocationCreate, AllocationOut, ChildCreate, ChildOut,
                              ChildUpdate)
from app.models.common import Page
from app.routers.deps import Ctx, Paging
from app.services import children

router = APIRouter(tags=["children"])


@router.post("/children", response_model=ChildOut, status_code=status.HTTP_201_CREATED,
             summary="Add a child; a social worker who adds one holds them")
def create_child(data: ChildCreate, ctx: Ctx) -> ChildOut:
    return children.create_child(ctx, data)


@router.get("/children", response_model=Page[ChildOut], summary="Children you may see")
def list_children(ctx: Ctx, page: Paging) -> dict:
    return children.list_children(ctx, page.limit, page.cursor)


@router.get("/children/{child_id}", response_model=ChildOut, summary="A child's record")
def get_child(child_id: uuid.UUID, ctx: Ctx) -> ChildOut:
    return children.get_child(ctx, child_id)


@router.patch("/children/{child_id}", response_model=ChildOut,
              summary="Change a child's record (allocated worker)")
def update_child(child_id: uuid.UUID, data: ChildUpdate, ctx: Ctx) -> ChildOut:
    return children.update_child(ctx, child_id, data)


@router.post("/children/{child_id}/allocations", response_model=AllocationOut,
             status_code=status.HTTP_201_CREATED,
             summary="Allocate a worker (team manager); ends the previous allocation")
def allocate(child_id: uuid.UUID, data: AllocationCreate, ctx: Ctx) -> AllocationOut:
    return children.allocate(ctx, child_id, data)


@router.get("/children/{child_id}/allocations", response_model=Page[AllocationOut],
            summary="Who has held this child, oldest first")
def list_allocations(child_id: uuid.UUID, ctx: Ctx, page: Paging) -> dict:
    return children.list_allocations(ctx, child_id, page.limit, page.cursor)
