import uuid
from typing import Literal

from fastapi import APIRouter, Request, Response, status

from app.models.common import Page
from app.models.staff import (PasswordChange, PasswordResetOut, TeamCreate, TeamMemberOut,
                              TeamOut, UserCreate, UserOut)
from app.routers.deps import AppSettings, Ctx, Paging
from app.services import access, staff

router = APIRouter(tags=["staff"])


@router.get("/users/me", response_model=UserOut, summary="Who am I")
def me(ctx: Ctx) -> UserOut:
    return staff.user_out(access.require_staff(ctx.actor))


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED,
             summary="Add a staff user (admin)",
             responses={409: {"description": "A user with this email already exists."}})
def create_user(request: Request, data: UserCreate, ctx: Ctx) -> UserOut:
    return staff.create_user(ctx, request.app.state.hashing, data,
                             request.app.state.settings.password_min_length)


@router.post("/users/me/password", status_code=status.HTTP_204_NO_CONTENT,
             summary="Change your password; your other sign-ins are signed out",
             responses={429: {"description": "Too many wrong current passwords: counted "
                              "like failed sign-ins; see Retry-After."}})
def change_password(request: Request, data: PasswordChange, ctx: Ctx) -> Response:
    staff.change_password(ctx, request.app.state.hashing, request.app.state.settings, data)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users", response_model=Page[UserOut],
            summary="List staff users, deactivated and locked ones marked (admin)")
def list_users(ctx: Ctx, page: Paging) -> dict:
    return staff.list_users(ctx, page.limit, page.cursor)


@router.get("/users/{user_id}", response_model=UserOut, summary="One staff user (admin)")
def get_user(user_id: uuid.UUID, ctx: Ctx) -> UserOut:
    return staff.get_user(ctx, user_id)


def _user_action(action: Literal["deactivate", "reactivate", "unlock"], summary: str,
                 doc: str) -> None:
    def endpoint(user_id: uuid.UUID, ctx: Ctx, settings: AppSettings) -> UserOut:
        return staff.admin_user_action(ctx, settings, user_id, action)

    endpoint.__doc__ = doc
    router.add_api_route(f"/users/{{user_id}}/{action}", endpoint, methods=["POST"],
                         response_model=UserOut, summary=summary,
                         operation_id=f"{action}_user")


_user_action("deactivate", "Deactivate a user who left (admin)",
             "Every access token, refresh token and capture token of theirs, and every "
             "tablet they enrolled, stops working at once; what they recorded stays "
             "attributed to them. Repeating it changes nothing.")
_user_action("reactivate", "Reactivate a deactivated user (admin)",
             "They may sign in again; their earlier sign-ins, capture tokens and devices "
             "stay ended.")
_user_action("unlock", "Unlock a user's sign-in after repeated failures (admin)",
             "Forgets the failed sign-ins of this account from every address.")


@router.post("/users/{user_id}/reset-password", response_model=PasswordResetOut,
             summary="Make a one-time password reset code for a user (admin)")
def reset_password_code(user_id: uuid.UUID, ctx: Ctx, settings: AppSettings) -> PasswordResetOut:
    """The code is shown only in this answer (only its hash is kept); pass it to the user,
    who chooses a new password with it at `POST /auth/password-reset` before it expires.
    A new code replaces any earlier one."""
    return staff.admin_user_action(ctx, settings, user_id, "reset-password")


@router.post("/teams", response_model=TeamOut, status_code=status.HTTP_201_CREATED,
             summary="Add a team (admin)",
             responses={409: {"description": "A team with this name already exists."}})
def create_team(data: TeamCreate, ctx: Ctx) -> TeamOut:
    return staff.create_team(ctx, data)


@router.get("/teams", response_model=Page[TeamOut], summary="List teams")
def list_teams(ctx: Ctx, page: Paging) -> dict:
    return staff.list_teams(ctx, page.limit, page.cursor)


@router.get("/teams/mine/members", response_model=Page[TeamMemberOut],
            summary="The people of your team and how many children each holds (team manager)")
def team_members(ctx: Ctx, page: Paging) -> dict:
    """What a team manager needs to allocate a child: each worker's id, name, role, whether
    they are active, and how many children they hold now."""
    return staff.team_members(ctx, page.limit, page.cursor)
