"""Request ids and security headers on every response, as plain ASGI middleware (cheap on
every request).

Every answer gets a strict Content-Security-Policy that allows nothing to load or run (the
API answers JSON, files and zips; none of them needs a script). HTML pages get their own
policy: everything from the service itself ('self'), nothing inline, nothing third-party.
The interactive docs (/docs, /redoc) load their bundles from the service too; their one
allowance is inline styles, which Swagger UI and ReDoc set from their own scripts.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

API_CSP = ("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
           "form-action 'none'")
# Pages (plan, handover, reports, the tablet app) load only from the service itself: no
# inline script or style, no third party.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "media-src 'self' blob:; font-src 'self'; connect-src 'self'; manifest-src 'self'; "
            "worker-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# The tablet app alone may ask for the camera and the microphone (photos and sounds).
TABLET_PREFIX = "/tablet/"
TABLET_PERMISSIONS = ("camera=(self), microphone=(self), geolocation=(), payment=(), "
                      "usb=()")
DOCS_PATHS = frozenset({"/docs", "/redoc"})
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
            "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    # Browsers only honour it over HTTPS, where the service is meant to run.
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


class RequestContextMiddleware:
    """Gives every request an id (the caller's X-Request-ID when it is safe to echo) and
    sets headers that keep children's data out of caches and frames."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) \
            else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        path = scope.get("path", "")

        def decorate(message: Message, csp: str | None = None) -> None:
            headers = MutableHeaders(scope=message)
            headers["X-Request-ID"] = request_id
            if path.startswith(TABLET_PREFIX) or path == TABLET_PREFIX.rstrip("/"):
                headers["Permissions-Policy"] = TABLET_PERMISSIONS
            for key, value in SECURITY_HEADERS.items():
                if key not in headers:
                    headers[key] = value
            if csp is None:
                # The tablet app's scripts and its service worker are pages' kin: a
                # worker's own fetches follow its script's policy.
                is_page = headers.get("content-type", "").startswith("text/html") \
                    or path.startswith(TABLET_PREFIX)
                csp = PAGE_CSP if is_page else API_CSP
            headers["Content-Security-Policy"] = csp

        docs_page = path in DOCS_PATHS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decorate(message, DOCS_CSP if docs_page else None)
            await send(message)

        await self.app(scope, receive, send_with_headers)
