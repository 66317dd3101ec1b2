"""What every router needs: a database session, the caller, and the request's audit facts.

Dependencies that do no I/O are `async`, so they run on the event loop instead of costing
a trip through the thread pool; the one that reads the database (who is calling) ends its
transaction before it returns, so no connection sits idle while the request waits for its
next turn in the pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import (APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer,
                              OAuth2PasswordBearer)
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.core.config import Settings
from app.core.context import Actor, Context
from app.core.db import new_session
from app.core.errors import Unauthorized, not_signed_in
from app.core.pages import wants_html
from app.core.security import is_capture_token
from app.models.common import INT32_MAX
from app.services import capture, staff

_oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False,
                               scheme_name="staff",
                               description="Staff sign-in: email and password.")
_bearer = HTTPBearer(auto_error=False, scheme_name="capture_token",
                     description="Child mode: the capture token a session was opened with.")

_device_key = APIKeyHeader(name="X-Device-Key", auto_error=False, scheme_name="device_key",
                           description="An enrolled tablet's device key, sent with its "
                           "worker's staff token when syncing.")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_db(request: Request) -> AsyncIterator[Session]:
    db = new_session(request.app.state.engine)  # connects lazily, on its first query
    try:
        yield db
    finally:
        if db.in_transaction():  # an error left it open: the rollback is database work
            await run_in_threadpool(db.close)
        else:
            db.close()


# Pages read in a browser (plan, handover, reports) also take the access token from this
# cookie, set by the sign-in page. Only GET pages read it: no API call that changes
# anything accepts it, so a cross-site form can never act with it (and it is SameSite).
PAGE_COOKIE = "childvoice_page"


def get_context(request: Request, db: Annotated[Session, Depends(get_db)],
                staff_token: Annotated[str | None, Depends(_oauth2)],
                bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                ) -> Context:
    token = staff_token or (bearer.credentials if bearer else None)
    return _context(request, db, token)


def get_page_context(request: Request, db: Annotated[Session, Depends(get_db)],
                     staff_token: Annotated[str | None, Depends(_oauth2)],
                     ) -> Context:
    """The caller of a page: a bearer token, or the page cookie. Problems on a page are
    answered as pages, and a missing sign-in sends the browser to the sign-in page."""
    request.state.page = True
    return _context(request, db, staff_token or request.cookies.get(PAGE_COOKIE))


def get_negotiated_context(request: Request, db: Annotated[Session, Depends(get_db)],
                           staff_token: Annotated[str | None, Depends(_oauth2)],
                           bearer: Annotated[HTTPAuthorizationCredentials | None,
                                             Depends(_bearer)]) -> Context:
    """A URL that answers JSON or a page by the Accept header: a browser asking for HTML
    is a page's caller (the cookie, problems as pages), anyone else an API caller."""
    if wants_html(request):
        return get_page_context(request, db, staff_token)
    return get_context(request, db, staff_token, bearer)


def _context(request: Request, db: Session, token: str | None) -> Context:
    if not token:
        raise not_signed_in()
    if is_capture_token(token):
        actor = Actor(capture_session=capture.session_from_capture_token(db, token))
    else:
        actor = staff.staff_from_token(db, request.app.state.tokens, token)
    db.commit()  # hand the connection back while the request waits for the endpoint's turn
    return Context(db=db, actor=actor, client_ip=request.client.host if request.client else None,
                   user_agent=request.headers.get("user-agent"),
                   request_id=getattr(request.state, "request_id", None))


async def get_anonymous_context(request: Request,
                                db: Annotated[Session, Depends(get_db)]) -> Context:
    """The request's facts for endpoints used before signing in (sign-in, refresh)."""
    return Context(db=db, actor=Actor(), client_ip=request.client.host if request.client else None,
                   user_agent=request.headers.get("user-agent"),
                   request_id=getattr(request.state, "request_id", None))


Ctx = Annotated[Context, Depends(get_context)]
PageCtx = Annotated[Context, Depends(get_page_context)]
NegotiatedCtx = Annotated[Context, Depends(get_negotiated_context)]
AnonCtx = Annotated[Context, Depends(get_anonymous_context)]
AppSettings = Annotated[Settings, Depends(get_settings)]
DeviceKey = Annotated[str | None, Depends(_device_key)]


@dataclass
class PageParams:
    limit: int
    cursor: str | None


async def page_params(request: Request,
                      limit: Annotated[int | None, Query(ge=1, le=200,
                                                         description="Items per page.")] = None,
                      cursor: Annotated[str | None, Query(
                          max_length=200, description="next_cursor from the previous page.")
                      ] = None) -> PageParams:
    return PageParams(limit or request.app.state.settings.page_size_default, cursor)


Paging = Annotated[PageParams, Depends(page_params)]

# A version in a path, as the server numbers them (1, 2, …; an INTEGER column).
VersionPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
