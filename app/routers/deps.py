"""What every router needs: a database session, the caller, and the request's audit facts.

Dependencies that do no I/O are `async`, so they run on the event loop instead of costing
a trip through the thread pool; the one that reads the database (who is calling) ends its
transaction before it returns, so no connection sits idle while the request waits for its
next turn in the pool.

The hot paths (entry writes, sync batches, the plan) instead take a `Caller`: the token,
not yet looked up. Their `async` endpoint makes one trip to the thread pool, in which the
caller is looked up and the work done in one transaction (and the answer is then checked
on the event loop, as for every `async` endpoint): one thread hop and one transaction per
request instead of three and two.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import (APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer,
                              OAuth2PasswordBearer)
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.core.config import Settings
from app.core.context import Actor, Context
from app.core.db import new_session
from app.core.errors import not_signed_in
from app.core.pages import wants_html
from app.core.security import StaffTokens, is_capture_token
from app.models.common import INT32_MAX
from app.services import access, capture, staff

_oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False,
                               scheme_name="staff",
                               description="Staff sign-in: email and password.")
_bearer = HTTPBearer(auto_error=False, scheme_name="capture_token",
                     description="Child mode: the capture token a session was opened with.")

_device_key = APIKeyHeader(name="X-Device-Key", auto_error=False, scheme_name="device_key",
                           description="An enrolled tablet's device key, sent with its "
                           "worker's staff token when syncing.")


def client_address(request: Request) -> str | None:
    """The caller's address: the connection's peer, or, when the peer is one of the
    council's reverse proxies (setting trusted_proxies), the address that proxy says it
    forwarded for. Headers from anyone else are ignored, so a client cannot choose its own
    address (and with it, its sign-in throttle and audit trail)."""
    peer = request.client.host if request.client else None
    proxies = trusted_networks(tuple(request.app.state.settings.trusted_proxies))
    if not proxies or not _is_trusted(peer, proxies):
        return peer
    chain = _forwarded_chain(request.headers)
    # The nearest hop not run by the council is the client; proxies append on the right.
    for hop in reversed(chain):
        if not _is_trusted(hop, proxies):
            return hop
    return chain[0] if chain else peer


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)


def _is_trusted(address: str | None, proxies: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def _forwarded_chain(headers) -> list[str]:  # noqa: ANN001 - Starlette's Headers
    """The addresses a request passed through, oldest first: RFC 7239 `Forwarded: for=`
    when sent, else `X-Forwarded-For`. Anything that is not an address ends the chain."""
    hops: list[str] = []
    if "forwarded" in headers:
        for element in ",".join(headers.getlist("forwarded")).split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "for":
                    hops.append(_bare_address(value.strip().strip('"')))
    else:
        hops = [_bare_address(h.strip()) for h in
                ",".join(headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    return [h for h in hops if h]


def _bare_address(value: str) -> str:
    """'[2001:db8::1]:443' -> '2001:db8::1', '192.0.2.7:5000' -> '192.0.2.7'; '' when it
    is not an address (an obfuscated RFC 7239 identifier, 'unknown')."""
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""


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


def _required(token: str | None) -> str:
    if not token:
        raise not_signed_in()
    return token


def _actor(db: Session, tokens: StaffTokens, token: str) -> Actor:
    if is_capture_token(token):
        session = capture.session_from_capture_token(db, token)
        # A capture token dies with its worker's right to the child (services/access).
        access.capture_token_usable(db, session)
        return Actor(capture_session=session)
    return staff.staff_from_token(db, tokens, token)


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
    actor = _actor(db, request.app.state.tokens, _required(token))
    db.commit()  # hand the connection back while the request waits for the endpoint's turn
    return Context(db=db, actor=actor, client_ip=client_address(request),
                   user_agent=request.headers.get("user-agent"),
                   request_id=getattr(request.state, "request_id", None))


@dataclass
class Caller:
    """Who the request says is calling, looked up (`context()`) in the endpoint's own
    thread and transaction."""

    db: Session
    tokens: StaffTokens
    token: str
    client_ip: str | None
    user_agent: str | None
    request_id: str | None

    def context(self) -> Context:
        """The caller, checked against the database (401 if the token is not, or no longer,
        good); the transaction this opens is the endpoint's."""
        return Context(db=self.db, actor=_actor(self.db, self.tokens, self.token),
                       client_ip=self.client_ip, user_agent=self.user_agent,
                       request_id=self.request_id)


async def get_caller(request: Request, db: Annotated[Session, Depends(get_db)],
                     staff_token: Annotated[str | None, Depends(_oauth2)],
                     bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                     ) -> Caller:
    token = _required(staff_token or (bearer.credentials if bearer else None))
    return Caller(db=db, tokens=request.app.state.tokens, token=token,
                  client_ip=request.client.host if request.client else None,
                  user_agent=request.headers.get("user-agent"),
                  request_id=getattr(request.state, "request_id", None))


async def get_anonymous_context(request: Request,
                                db: Annotated[Session, Depends(get_db)]) -> Context:
    """The request's facts for endpoints used before signing in (sign-in, refresh)."""
    return Context(db=db, actor=Actor(), client_ip=client_address(request),
                   user_agent=request.headers.get("user-agent"),
                   request_id=getattr(request.state, "request_id", None))


def context_in_thread(request: Request, db: Session, staff_token: str | None,
                      bearer: HTTPAuthorizationCredentials | None) -> Callable[[], Context]:
    """For an async endpoint that answers JSON or a page: how to look the caller up in the
    endpoint's own thread hop (a page's caller by the cookie, an API caller by the bearer
    token; a missing token is a 401 at once)."""
    if wants_html(request):
        return lambda: get_page_context(request, db, staff_token)
    token = _required(staff_token or (bearer.credentials if bearer else None))
    return Caller(db=db, tokens=request.app.state.tokens, token=token,
                  client_ip=request.client.host if request.client else None,
                  user_agent=request.headers.get("user-agent"),
                  request_id=getattr(request.state, "request_id", None)).context


Ctx = Annotated[Context, Depends(get_context)]
Db = Annotated[Session, Depends(get_db)]
StaffToken = Annotated[str | None, Depends(_oauth2)]
BearerToken = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
CallerDep = Annotated[Caller, Depends(get_caller)]
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
