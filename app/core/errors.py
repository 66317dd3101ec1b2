"""Problem documents (RFC 9457): every error the API answers is shaped here, and only here."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core import pages

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://childvoice.example/problems/"


class Problem(Exception):
    """An error the API reports to its caller. `slug` names the problem type."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, status: int | None = None, slug: str | None = None,
                 title: str | None = None, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if slug is not None:
            self.slug = slug
        if title is not None:
            self.title = title
        self.headers = headers or {}
        self.extra = extra

    def document(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Not signed in"

    def __init__(self, detail: str, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


def not_signed_in() -> Unauthorized:
    return Unauthorized("Sign in first: send 'Authorization: Bearer <token>'.",
                        slug="not-signed-in")


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class TooManyRequests(Problem):
    status, slug, title = 429, "too-many-requests", "Too many attempts"

    def __init__(self, detail: str, *, retry_after: int, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(retry_after, 1))})
        super().__init__(detail, retry_after=max(retry_after, 1), **kw)


class PayloadTooLarge(Problem):
    status, slug, title = 413, "too-large", "Too large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Invalid(Problem):
    """Input that parses but breaks a rule; names the offending fields in `errors`."""

    status, slug, title = 422, "invalid", "Invalid input"

    def __init__(self, detail: str, *, field: list[str | int] | None = None, **kw: Any) -> None:
        if field is not None:
            kw.setdefault("errors", [{"loc": field, "msg": detail, "type": "value_error"}])
        super().__init__(detail, **kw)


def problem_response(problem: Problem, request: Request | None = None) -> Response:
    # A page's problem is a page (or the sign-in) for a browser that asked for HTML; any
    # other client of the same URL (curl fetching a PDF, a checker) gets the document.
    if request is not None and getattr(request.state, "page", False) \
            and (request.url.path.endswith(".html") or pages.wants_html(request)):
        return _problem_page(problem, request)
    return JSONResponse(
        problem.document(request.url.path if request else None),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def _problem_page(problem: Problem, request: Request) -> Response:
    """A problem met on a page (a browser): sign-in first, or a short page saying what is
    wrong. The same words as the problem document."""
    if problem.status == 401:
        target = request.url.path
        return RedirectResponse("/signin?" + urlencode({"next": target}), status_code=303)
    return pages.render(request, "problem.html", {"problem": problem.document()},
                        status_code=problem.status)


def internal_problem_response() -> JSONResponse:
    """The answer to an error nobody handled (see core/observability.py, which logs it)."""
    problem = Problem("Something went wrong on our side. Nothing was changed; please try "
                      "again.", status=500, slug="internal", title="Internal error")
    return JSONResponse(problem.document(), status_code=500, media_type=PROBLEM_MEDIA_TYPE)


def validation_problem(raw_errors: Any, loc_prefix: tuple[str | int, ...] = ()) -> Problem:
    """A problem document from pydantic's error list (a request's, or one sync item's, whose
    locations are then prefixed with where the item sits in the request)."""
    errors = []
    for err in raw_errors:
        loc = [*loc_prefix, *err.get("loc", ())]
        if err.get("type") == "union_tag_invalid":
            # Name the field that picks the variant (e.g. an entry's `kind`).
            loc.append(str(err.get("ctx", {}).get("discriminator", "")).strip("'"))
        # Where and why only, never the submitted value: it may be a child's words.
        errors.append({"loc": loc, "msg": err.get("msg", ""), "type": err.get("type", "")})
    if any(e["type"] == "json_invalid" for e in errors):
        return Problem("The request body is not valid JSON. Send a JSON object with "
                       "Content-Type: application/json.", slug="malformed-json",
                       title="Malformed JSON", errors=errors)
    shown = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return Invalid(f"Fix these fields: {shown}{more}.", errors=errors)


def _validation_problem(exc: RequestValidationError) -> Problem:
    return validation_problem(exc.errors())


_STATUS_SLUGS = {404: NotFound, 401: Unauthorized, 403: Forbidden, 409: Conflict}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(_validation_problem(exc), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        cls = _STATUS_SLUGS.get(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404:
            detail = "There is nothing at this address."
        if cls:
            problem = cls(detail, headers=dict(exc.headers or {}))
        else:
            problem = Problem(detail, status=exc.status_code, slug=f"http-{exc.status_code}",
                              title=detail, headers=dict(exc.headers or {}))
        return problem_response(problem, request)
