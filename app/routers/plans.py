import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from app.models.common import Page
from app.models.plan import PlanOut, PlanVersionOut, PlanVersionSummary, SectionKey, SectionUpdate
from app.core.pages import wants_html
from app.routers.deps import Ctx, PageOrApiCtx, Paging
from app.routers.plan_pages import Latest, latest_count, page
from app.services import plans

router = APIRouter(tags=["my plan"])

_PAGE = {200: {"content": {"text/html": {}}, "description": "With `Accept: text/html`: "
              "the page (as `.html`)."}}


@router.get("/children/{child_id}/plan", response_model=PlanOut, responses=_PAGE,
            summary="The child's My plan, with the latest of what they said")
def get_plan(request: Request, child_id: uuid.UUID, ctx: PageOrApiCtx,
             latest: Latest = None) -> PlanOut:
    if wants_html(request):
        return page(request, ctx, child_id, latest)
    return plans.get_plan(ctx, child_id, latest_count(request, latest))


@router.put("/children/{child_id}/plan/sections/{key}", response_model=PlanOut,
            summary="Write a section and pin entries into it (allocated worker)")
def update_section(request: Request, child_id: uuid.UUID, key: SectionKey, data: SectionUpdate,
                   ctx: Ctx, latest: Latest = None) -> PlanOut:
    return plans.update_section(ctx, child_id, key, data, latest_count(request, latest))


@router.post("/children/{child_id}/plan/versions", response_model=PlanVersionOut,
             status_code=status.HTTP_201_CREATED,
             summary="Publish the plan as it reads now, as an unchangeable version")
def publish(request: Request, child_id: uuid.UUID, ctx: Ctx,
            latest: Latest = None) -> PlanVersionOut:
    return plans.publish(ctx, child_id, latest_count(request, latest))


@router.get("/children/{child_id}/plan/versions", response_model=Page[PlanVersionSummary],
            summary="Published versions of the plan, oldest first")
def list_versions(child_id: uuid.UUID, ctx: Ctx, page: Paging) -> dict:
    return plans.list_versions(ctx, child_id, page.limit, page.cursor)


@router.get("/children/{child_id}/plan/versions/{version}", response_model=PlanVersionOut,
            responses=_PAGE, summary="One published version of the plan")
def get_version(request: Request, child_id: uuid.UUID, version: Annotated[int, Path(ge=1)],
                ctx: PageOrApiCtx) -> PlanVersionOut:
    if wants_html(request):
        return page(request, ctx, child_id, None, version)
    return plans.get_version(ctx, child_id, version)
