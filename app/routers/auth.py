from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app.core.errors import Invalid
from app.models.common import NUL_MESSAGE
from app.models.staff import RefreshIn, TokenOut
from app.routers.deps import AnonCtx, Ctx
from app.services import staff

router = APIRouter(tags=["staff"])


@router.post("/auth/token", response_model=TokenOut, summary="Sign in and get an access token",
             responses={401: {"description": "Wrong email or password (the same answer "
                                             "whether or not the account exists)."},
                        429: {"description": "Too many failed sign-ins for this account or "
                                             "from this address; see Retry-After."}},
             openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {
                 "example": {"username": "sam.worker@example.org",
                             "password": "a long passphrase"}}}}})
def sign_in(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()],
            ctx: AnonCtx) -> dict:
    """OAuth2 password form: `username` is the staff email. The access token is
    short-lived; use the refresh token at /auth/refresh for a new pair."""
    if "\x00" in form.username:  # the form is FastAPI's own, so its types are not ours
        raise Invalid(f"username {NUL_MESSAGE}", field=["body", "username"])
    state = request.app.state
    return staff.sign_in(ctx, state.hashing, state.tokens, state.settings, form.username,
                         form.password)


@router.post("/auth/refresh", response_model=TokenOut,
             summary="Swap a refresh token (each works once) for a new pair",
             responses={401: {"description": "The refresh token is invalid, used or expired "
                              "(a reused one also ends its sign-in); sign in again."}})
def refresh(request: Request, data: RefreshIn, ctx: AnonCtx) -> dict:
    return staff.refresh(ctx, request.app.state.tokens, data.refresh_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT,
             summary="Sign out this sign-in (its access and refresh tokens stop working)")
def logout(ctx: Ctx) -> Response:
    staff.logout(ctx)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/auth/logout-all", status_code=status.HTTP_204_NO_CONTENT,
             summary="Sign out everywhere: every sign-in of yours, on every device")
def logout_all(ctx: Ctx) -> Response:
    staff.logout_all(ctx)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
