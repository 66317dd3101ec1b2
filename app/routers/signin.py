"""Signing a browser in, for the pages (plan, handover, reports): a form, and a cookie that
only GET pages read (see deps.PAGE_COOKIE). The API itself keeps bearer tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import RedirectResponse, Response

from app.core.errors import Problem
from app.core.pages import render
from app.models.common import SafeText
from app.routers.deps import PAGE_COOKIE, AnonCtx, PageCtx
from app.services import staff

router = APIRouter(tags=["pages"], include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path on this service: never an open redirect to somewhere else."""
    if target and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return "/"


@router.get("/signin")
def signin_page(request: Request, next: str | None = None) -> Response:  # noqa: A002
    return render(request, "signin.html", {"next": _safe_next(next), "problem": None})


@router.post("/signin")
def signin(request: Request, ctx: AnonCtx, username: Annotated[SafeText, Form(max_length=320)],
           password: Annotated[str, Form(max_length=1024)],
           next: Annotated[str | None, Form(max_length=2000)] = None) -> Response:  # noqa: A002
    state = request.app.state
    target = _safe_next(next)
    try:
        tokens = staff.sign_in(ctx, state.hashing, state.tokens, state.settings, username,
                               password)
    except Problem as problem:
        if problem.status not in (401, 403, 429):
            raise
        return render(request, "signin.html", {"next": target, "problem": problem.detail},
                      status_code=problem.status)
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(PAGE_COOKIE, tokens["access_token"], httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/",
                        max_age=state.settings.access_token_minutes * 60)
    return response


@router.post("/signout")
def signout(ctx: PageCtx) -> Response:
    staff.logout(ctx)
    response = RedirectResponse("/signin", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(PAGE_COOKIE, path="/")
    return response
