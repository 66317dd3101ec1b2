"""Request bodies are bounded while they are read, and a request that needs a caller but
names none is refused before a byte of its body is read.

FastAPI reads and parses a JSON or form body before any dependency runs, so neither the
sign-in check nor a size check in a dependency could stop a 200 MB body from being held and
parsed. This plain ASGI middleware sits in front of the routes and knows, per route, whether
it needs a caller and whether its body is parsed whole (an endpoint that streams its body,
like the media uploads, bounds it itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from re import Pattern
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import PayloadTooLarge, Problem, not_signed_in, problem_response
from app.core.multipart import byte_count

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class _Rule:
    path: Pattern[str]
    methods: frozenset[str]
    needs_caller: bool
    limit: int | None  # None: the endpoint streams its body and bounds it itself


def _depends_on(route: APIRoute, dependencies: tuple[Callable[..., Any], ...]) -> bool:
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call in dependencies:
            return True
        stack.extend(dependant.dependencies)
    return False


class BodyLimitMiddleware:
    """`callers` are the dependencies that name the caller by a bearer token (routes that use
    one need an `Authorization: Bearer` header); `limits_by_path` gives a route (by its path template)
    a body limit other than `default_limit` (the sync batch has its own)."""

    def __init__(self, app: ASGIApp, *, callers: tuple[Callable[..., Any], ...],
                 default_limit: int, limits_by_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.callers = callers
        self.default_limit = default_limit
        self.limits_by_path = limits_by_path or {}
        self._rules: list[_Rule] | None = None

    def _rules_for(self, scope: Scope) -> list[_Rule]:
        if self._rules is None:
            self._rules = [
                _Rule(context.path_regex, frozenset(context.methods),
                      _depends_on(context.original_route, self.callers),
                      None if context.original_route.body_field is None
                      else self.limits_by_path.get(context.path, self.default_limit))
                for context in iter_route_contexts(scope["app"].routes)
                if isinstance(context.original_route, APIRoute)
                and _BODY_METHODS & set(context.methods or ())]
        return self._rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        rule = next((r for r in self._rules_for(scope)
                     if method in r.methods and r.path.match(path)), None)
        if rule is None:  # no such operation: the router answers 404 or 405, bodiless
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if rule.needs_caller and not headers.get(b"authorization", b"")[:7].lower() \
                .startswith(b"bearer "):
            await self._refuse(not_signed_in(), scope, receive, send)
            return
        if rule.limit is None:
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLarge(
            f"The request body is larger than this operation takes ({rule.limit} bytes).",
            limit_bytes=rule.limit)
        declared = byte_count(headers.get(b"content-length", b"").decode("latin-1") or None)
        if declared is not None and declared > rule.limit:
            await self._refuse(too_large, scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > rule.limit:
                await self._refuse(too_large, scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(problem: Problem, scope: Scope, receive: Receive, send: Send) -> None:
        # The body is left unread; the server closes the connection after the answer.
        problem.headers = {**problem.headers, "Connection": "close"}
        await problem_response(problem, Request(scope))(scope, receive, send)
