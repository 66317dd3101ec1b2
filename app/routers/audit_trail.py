import uuid

from fastapi import APIRouter

from app.models.audit import AuditEventOut
from app.models.common import Page
from app.routers.deps import Ctx, Paging
from app.services import audit

router = APIRouter(tags=["audit"])


@router.get("/children/{child_id}/audit", response_model=Page[AuditEventOut],
            summary="Who read or changed this child's record, and when (team manager)")
def child_trail(child_id: uuid.UUID, ctx: Ctx, page: Paging) -> dict:
    return audit.child_trail(ctx, child_id, page.limit, page.cursor)
