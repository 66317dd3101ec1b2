"""Pages: the Jinja2 templates in app/templates (autoescaped), and how a router answers one.

A page is a router that renders a template from what a service returned; no rule lives in
a template. Pages get their own Content-Security-Policy (see core/middleware.py): 'self'
only, no inline script or style.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The reference tablet app: plain ES modules served as they are (no build step).
TABLET_DIR = Path(__file__).resolve().parent.parent / "tablet"
mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("text/javascript", ".js")

environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,  # a template naming a missing value fails loudly in tests
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(request: Request, template: str, context: dict[str, Any],
           status_code: int = 200) -> HTMLResponse:
    """Render `template` with `context` (plus the request, for links) as an HTML page."""
    body = environment.get_template(template).render(request=request, **context)
    return HTMLResponse(body, status_code=status_code)


def wants_html(request: Request) -> bool:
    """True when the caller prefers a page to JSON (a browser's Accept header). A caller
    that takes anything (`*/*`, as curl and HTTP libraries send) gets JSON."""
    accept = request.headers.get("accept", "")
    best_html = _quality(accept, "text/html")
    return best_html > 0 and best_html > _quality(accept, "application/json")


def _quality(accept: str, media_type: str) -> float:
    kind = media_type.split("/")[0] + "/*"
    best = 0.0
    for part in accept.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        if name not in (media_type, kind, "*/*"):
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        # An exact match counts more than a wildcard at the same q.
        weight = q + (0.001 if name == media_type else 0.0)
        best = max(best, weight)
    return best
