"""Staff single sign-on: the redirect to the council's OpenID Provider and its callback."""

from typing import Annotated

from fastapi import APIRouter, Cookie, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from app.models.staff import TokenOut
from app.routers.deps import AnonCtx
from app.services import sso

router = APIRouter(tags=["staff"])

COOKIE = "childvoice_sso"
COOKIE_PATH = "/api/v1/auth/oidc"


@router.get("/auth/oidc/login", status_code=302, response_class=RedirectResponse,
            summary="Sign in with the council's single sign-on (redirects to the provider)",
            responses={302: {"description": "To the provider's sign-in page."},
                       404: {"description": "Single sign-on is not set up here."}})
async def oidc_login(request: Request, ctx: AnonCtx) -> RedirectResponse:
    """Open this in the browser; after signing in at the provider, the browser comes back
    to `/auth/oidc/callback`, which answers the service's own token pair."""
    client: sso.OidcClient = request.app.state.sso
    start = await run_in_threadpool(sso.begin_login, ctx, client)
    response = RedirectResponse(start.authorize_url, status_code=302)
    response.set_cookie(COOKIE, start.browser_secret, max_age=client.settings.oidc_login_minutes
                        * 60, path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=client.redirect_uri.startswith("https://"))
    return response


@router.get("/auth/oidc/callback", response_model=TokenOut,
            summary="Where the provider sends the browser back: answers the token pair",
            responses={401: {"description": "The sign-in could not be checked (state, "
                                            "browser, code or identity token)."},
                       404: {"description": "Single sign-on is not set up here."},
                       403: {"description": "In no mapped group, or the account is "
                                            "deactivated."},
                       502: {"description": "The provider did not answer."}})
async def oidc_callback(request: Request, ctx: AnonCtx,
                        state: Annotated[str | None, Query(max_length=200)] = None,
                        code: Annotated[str | None, Query(max_length=2000)] = None,
                        error: Annotated[str | None, Query(max_length=200)] = None,
                        browser: Annotated[str | None, Cookie(alias=COOKIE,
                                                              max_length=200)] = None,
                        ) -> JSONResponse:
    """The same answer as `POST /auth/token`: an access token and a refresh token, then
    used exactly like a password sign-in's. Not cached, and the sign-in cookie is cleared."""
    state_ = request.app.state
    pair = await run_in_threadpool(sso.finish_login, ctx, state_.sso, state_.hashing,
                                   state_.tokens, state=state, code=code, error=error,
                                   browser_secret=browser)
    response = JSONResponse(TokenOut(**pair).model_dump(mode="json"),
                            headers={"Cache-Control": "no-store"})
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response
