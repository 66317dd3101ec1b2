from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app.core.errors import Invalid, UnsupportedMediaType
from app.models.common import NUL_MESSAGE
from app.models.staff import PasswordResetIn, RefreshIn, TokenOut
from app.routers.deps import AnonCtx, Ctx
from app.services import staff

router = APIRouter(tags=["staff"])

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def _form_body(request: Request) -> None:
    """Sign-in is an OAuth2 password form; a JSON body (a common first try) is told so
    before the form's fields are checked."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in FORM_TYPES:
        raise UnsupportedMediaType(
            "Send a form, not JSON: Content-Type application/x-www-form-urlencoded with the "
            "fields 'username' (your email) and 'password', e.g. curl -d "
            "'username=sam@example.org' --data-urlencode 'password=…' …/api/v1/auth/token.",
            slug="send-a-form", title="Sign-in is a form")


@router.post("/auth/token", response_model=TokenOut, summary="Sign in and get an access token",
             dependencies=[Depends(_form_body)],
             responses={401: {"description": "Wrong email or password (the same answer "
                                             "whether or not the account exists)."},
                        403: {"description": "The account is deactivated, or password "
                                             "sign-in is turned off (use the SSO)."},
                        415: {"description": "Not a form: send username and password as "
                                             "application/x-www-form-urlencoded."},
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


@router.post("/auth/password-reset", status_code=status.HTTP_204_NO_CONTENT,
             summary="Choose a new password with the one-time code an admin gave you",
             responses={401: {"description": "The email or code is not right, or the code "
                                             "was used or has expired."},
                        429: {"description": "Too many wrong codes for this account; see "
                                             "Retry-After."}})
def password_reset(request: Request, data: PasswordResetIn, ctx: AnonCtx) -> Response:
    """The code works once and expires; wrong codes count like failed sign-ins. Every
    earlier sign-in of the account ends, and its sign-in lock-out is lifted."""
    state = request.app.state
    staff.reset_password(ctx, state.hashing, state.settings, data)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
