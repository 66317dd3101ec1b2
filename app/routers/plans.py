import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from app.models.common import Page
from app.models.plan import PlanOut, PlanVersionOut, PlanVersionSummary, SectionKey, SectionUpdate
from app.routers.deps import Ctx, Paging, VersionPath
from app.services import plans

router = APIRouter(tags=["my plan"])

Latest = Annotated[int | None, Query(ge=1, le=50, description="How many of the newest entries "
                                     "to show as the latest voice (default 10).")]


def _latest(request: Request, latest: int | None) -> int:
    return latest or request.app.state.settings.plan_latest_default


@router.get("/children/{child_id}/plan", response_model=PlanOut,
            summary="The child's My plan, with the latest of what they said")
def get_plan(request: Request, child_id: uuid.UUID, ctx: Ctx, latest: Latest = None) -> PlanOut:
    return plans.get_plan(ctx, child_id, _latest(request, latest))


@router.put("/children/{child_id}/plan/sections/{key}", response_model=PlanOut,
            summary="Write a section and pin entries into it (allocated worker)",
            responses={409: {"description": "Saved by someone else at the same moment; "
                             "reload and try again."}})
def update_section(request: Request, child_id: uuid.UUID, key: SectionKey, data: SectionUpdate,
                   ctx: Ctx, latest: Latest = None) -> PlanOut:
    return plans.update_section(ctx, child_id, key, data, _latest(request, latest))


@router.post("/children/{child_id}/plan/versions", response_model=PlanVersionOut,
             status_code=status.HTTP_201_CREATED,
             summary="Publish the plan as it reads now, as an unchangeable version",
             responses={409: {"description": "Another version was published at the same "
                              "moment; reload and try again."}})
def publish(request: Request, child_id: uuid.UUID, ctx: Ctx,
            latest: Latest = None) -> PlanVersionOut:
    return plans.publish(ctx, child_id, _latest(request, latest))


@router.get("/children/{child_id}/plan/versions", response_model=Page[PlanVersionSummary],
            summary="Published versions of the plan, oldest first")
def list_versions(child_id: uuid.UUID, ctx: Ctx, page: Paging) -> dict:
    return plans.list_versions(ctx, child_id, page.limit, page.cursor)


@router.get("/children/{child_id}/plan/versions/{version}", response_model=PlanVersionOut,
            summary="One published version of the plan")
def get_version(child_id: uuid.UUID, version: VersionPath,
                ctx: Ctx) -> PlanVersionOut:
    return plans.get_version(ctx, child_id, version)
