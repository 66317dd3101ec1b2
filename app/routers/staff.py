from fastapi import APIRouter, Request, Response, status

from app.models.common import Page
from app.models.staff import PasswordChange, TeamCreate, TeamOut, UserCreate, UserOut
from app.routers.deps import Ctx, Paging
from app.services import access, staff

router = APIRouter(tags=["staff"])


@router.get("/users/me", response_model=UserOut, summary="Who am I")
def me(ctx: Ctx) -> UserOut:
    return UserOut.model_validate(access.require_staff(ctx.actor))


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED,
             summary="Add a staff user (admin)",
             responses={409: {"description": "A user with this email already exists."}})
def create_user(request: Request, data: UserCreate, ctx: Ctx) -> UserOut:
    return staff.create_user(ctx, request.app.state.hashing, data,
                             request.app.state.settings.password_min_length)


@router.post("/users/me/password", status_code=status.HTTP_204_NO_CONTENT,
             summary="Change your password; your other sign-ins are signed out")
def change_password(request: Request, data: PasswordChange, ctx: Ctx) -> Response:
    staff.change_password(ctx, request.app.state.hashing, request.app.state.settings, data)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users", response_model=Page[UserOut], summary="List staff users (admin)")
def list_users(ctx: Ctx, page: Paging) -> dict:
    return staff.list_users(ctx, page.limit, page.cursor)


@router.post("/teams", response_model=TeamOut, status_code=status.HTTP_201_CREATED,
             summary="Add a team (admin)",
             responses={409: {"description": "A team with this name already exists."}})
def create_team(data: TeamCreate, ctx: Ctx) -> TeamOut:
    return staff.create_team(ctx, data)


@router.get("/teams", response_model=Page[TeamOut], summary="List teams")
def list_teams(ctx: Ctx, page: Paging) -> dict:
    return staff.list_teams(ctx, page.limit, page.cursor)
