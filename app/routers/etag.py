"""Conditional GET for what a tablet keeps offline: an ETag of the exact body it would get,
and 304 Not Modified when its If-None-Match already names that body."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from pydantic import BaseModel

# The tablet keeps these answers itself; private, and revalidated before each use.
CACHE_CONTROL = "private, no-cache"


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [t.strip() for t in if_none_match.split(",")]
    # Weak comparison (RFC 9110 13.1.2): W/"x" matches "x".
    return "*" in candidates or tag in [t.removeprefix("W/") for t in candidates]


def etag_response(request: Request, model: BaseModel) -> Response:
    body = model.model_dump_json().encode()
    tag = f'"{hashlib.sha256(body).hexdigest()[:40]}"'
    headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL}
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
