import uuid

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool

from app.core.pages import wants_html
from app.models.common import Page
from app.models.plan import PlanOut, PlanVersionOut, PlanVersionSummary, SectionKey, SectionUpdate
from app.routers.deps import BearerToken, Ctx, Db, NegotiatedCtx, Paging, StaffToken, \
    VersionPath, context_in_thread
from app.routers.plan_pages import Latest, latest_count, page
from app.services import plans

router = APIRouter(tags=["my plan"])

_PAGE = {200: {"content": {"text/html": {}}, "description": "With `Accept: text/html`: "
              "the page (as `.html`)."}}


@router.get("/children/{child_id}/plan", response_model=PlanOut, responses=_PAGE,
            summary="The child's My plan, with the latest of what they said")
async def get_plan(request: Request, child_id: uuid.UUID, db: Db, staff_token: StaffToken,
                   bearer: BearerToken, latest: Latest = None) -> PlanOut:
    # A hot path: the caller is looked up in the same thread hop as the plan is read.
    context = context_in_thread(request, db, staff_token, bearer)
    if wants_html(request):
        return await run_in_threadpool(lambda: page(request, context(), child_id, latest))
    count = latest_count(request, latest)
    return await run_in_threadpool(lambda: plans.get_plan(context(), child_id, count))


@router.put("/children/{child_id}/plan/sections/{key}", response_model=PlanOut,
            summary="Write a section and pin entries into it (allocated worker)",
            responses={409: {"description": "Saved by someone else at the same moment; "
                             "reload and try again."}})
def update_section(request: Request, child_id: uuid.UUID, key: SectionKey, data: SectionUpdate,
                   ctx: Ctx, latest: Latest = None) -> PlanOut:
    return plans.update_section(ctx, child_id, key, data, latest_count(request, latest))


@router.post("/children/{child_id}/plan/versions", response_model=PlanVersionOut,
             status_code=status.HTTP_201_CREATED,
             summary="Publish the plan as it reads now, as an unchangeable version",
             responses={409: {"description": "Another version was published at the same "
                              "moment; reload and try again."}})
def publish(request: Request, child_id: uuid.UUID, ctx: Ctx,
            latest: Latest = None) -> PlanVersionOut:
    return plans.publish(ctx, child_id, latest_count(request, latest))


@router.get("/children/{child_id}/plan/versions", response_model=Page[PlanVersionSummary],
            summary="Published versions of the plan, oldest first")
def list_versions(child_id: uuid.UUID, ctx: Ctx, page: Paging) -> dict:
    return plans.list_versions(ctx, child_id, page.limit, page.cursor)


@router.get("/children/{child_id}/plan/versions/{version}", response_model=PlanVersionOut,
            responses=_PAGE, summary="One published version of the plan")
def get_version(request: Request, child_id: uuid.UUID, version: VersionPath,
                ctx: NegotiatedCtx) -> PlanVersionOut:
    if wants_html(request):
        return page(request, ctx, child_id, None, version)
    return plans.get_version(ctx, child_id, version)
