"""My plan as a page written to the child, and as a PDF (the same page, printed)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.core.context import Context
from app.core.pages import render, render_text
from app.routers.deps import VersionPath, PageCtx
from app.services import plan_page, plan_pdf

router = APIRouter(tags=["my plan"])

_PDF = {200: {"content": {"application/pdf": {"schema": {"type": "string",
                                                        "format": "binary"}}}, "description": "The plan as a PDF: its "
              "pictures embedded, its text extractable."}}
Version = VersionPath
Latest = Annotated[int | None, Query(ge=1, le=50, description="How many of the newest entries "
                                     "to show as the latest voice (default 10).")]


def latest_count(request: Request, latest: int | None) -> int:
    return latest or request.app.state.settings.plan_latest_default


def _base(child_id: uuid.UUID, version: int | None) -> str:
    base = f"/api/v1/children/{child_id}/plan"
    return f"{base}/versions/{version}" if version else base


def page(request: Request, ctx: Context, child_id: uuid.UUID, latest: int | None,
         version: int | None = None) -> HTMLResponse:
    links = plan_page.SignedLinks(request.app.state.signed_urls, ctx.actor.id)
    shown = plan_page.plan_page(ctx, child_id, latest_count(request, latest), links, version)
    return render(request, "plan.html", {"page": shown, "pdf": False, "stamp": None,
                                         "pdf_href": _base(child_id, version) + ".pdf"})


def pdf(request: Request, ctx: Context, child_id: uuid.UUID, latest: int | None,
        version: int | None = None) -> Response:
    files = plan_page.PdfFiles()
    shown = plan_page.plan_page(ctx, child_id, latest_count(request, latest), files, version,
                                as_pdf=True)
    html = render_text(request, "plan.html", {"page": shown, "pdf": True, "stamp": None,
                                              "pdf_href": ""})
    body = plan_pdf.render(html, files, request.app.state.media_store)
    name = f"my-plan-version-{version}.pdf" if version else "my-plan.pdf"
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}"',
        "Cache-Control": "private, no-cache"})


@router.get("/children/{child_id}/plan.html", response_class=HTMLResponse,
            summary="My plan as a page written to the child (sign in at /signin)")
def plan_html(request: Request, child_id: uuid.UUID, ctx: PageCtx,
              latest: Latest = None) -> HTMLResponse:
    return page(request, ctx, child_id, latest)


@router.get("/children/{child_id}/plan.pdf", response_class=Response, responses=_PDF,
            summary="My plan as a PDF, for printing or the council's case system")
def plan_pdf_now(request: Request, child_id: uuid.UUID, ctx: PageCtx,
                 latest: Latest = None) -> Response:
    return pdf(request, ctx, child_id, latest)


@router.get("/children/{child_id}/plan/versions/{version}.html", response_class=HTMLResponse,
            summary="A published version of My plan as a page")
def version_html(request: Request, child_id: uuid.UUID, version: Version,
                 ctx: PageCtx) -> HTMLResponse:
    return page(request, ctx, child_id, None, version)


@router.get("/children/{child_id}/plan/versions/{version}.pdf", response_class=Response,
            responses=_PDF, summary="A published version of My plan as a PDF (never changes)")
def version_pdf(request: Request, child_id: uuid.UUID, version: Version,
                ctx: PageCtx) -> Response:
    return pdf(request, ctx, child_id, None, version)
