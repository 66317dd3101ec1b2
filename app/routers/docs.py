"""The front page and the interactive API documentation, served with their assets from the
service itself (app/static/docs), so they work without internet."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.core.pages import render

router = APIRouter(tags=["service"], include_in_schema=False)


@dataclass(frozen=True)
class Link:
    title: str
    href: str
    about: str


# What the front page offers; a new page adds its line here.
LINKS: list[Link] = [
    Link("API documentation", "/docs", "every operation, with examples; try them after "
         "signing in with Authorize"),
    Link("API reference", "/redoc", "the same, as one document to read"),
    Link("OpenAPI document", "/openapi.json", "the machine-readable description"),
    Link("Health check", "/healthz", "answers {\"status\": \"ok\"} while the service is up"),
    Link("Sign in", "/signin", "for the plan, handover and report pages"),
    Link("The tablet app", "/tablet/", "worker mode and child mode for a visit, online or "
         "not; add it to the tablet's home screen"),
    Link("Whose voice has not been heard", "/api/v1/reports/voice.html",
         "a team manager's report; each child in it links to their handover, timeline "
         "and My plan (/api/v1/children/{id}/plan.html, handover.html, timeline.html)"),
]


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html", {"links": LINKS})


@router.get("/docs", response_class=HTMLResponse)
def swagger(request: Request) -> HTMLResponse:
    return render(request, "docs_swagger.html", {"title": request.app.title,
                                                 "openapi_url": request.app.openapi_url})


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    return render(request, "docs_redoc.html", {"title": request.app.title,
                                               "openapi_url": request.app.openapi_url})
