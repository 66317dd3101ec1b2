"""The OpenAPI document, made true to what the service answers.

FastAPI describes every 422 with its own validation shape, which this service never sends,
and lists only the answers a route declares. Here every error answer becomes the one
problem document the handler in `core/errors.py` writes (`application/problem+json`), and
every operation lists the errors any request to it can meet: who is calling (401, 403),
what it names (404), what it sends (400, 413, 422).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.core.errors import PROBLEM_MEDIA_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document: every error this service answers.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri",
                 "description": "Names the problem; one page per type."},
        "title": {"type": "string", "description": "The problem type in words."},
        "status": {"type": "integer", "description": "The HTTP status, repeated."},
        "detail": {"type": "string", "description": "What went wrong and what to do."},
        "instance": {"type": "string", "description": "The path that answered."},
        "errors": {"type": "array", "description": "Invalid fields: where and why (never "
                   "the value sent).", "items": {
                       "type": "object", "required": ["loc", "msg", "type"],
                       "properties": {
                           "loc": {"type": "array",
                                   "items": {"anyOf": [{"type": "string"},
                                                       {"type": "integer"}]}},
                           "msg": {"type": "string"}, "type": {"type": "string"}}}},
    },
    "additionalProperties": True,
    "example": {"type": "https://childvoice.example/problems/invalid",
                "title": "Invalid input", "status": 422,
                "detail": "Fix these fields: body.captured_at: must be a time between "
                          "2000-01-01 and 2099-12-31 (UTC).",
                "instance": "/api/v1/sessions/0f3c…/entries",
                "errors": [{"loc": ["body", "captured_at"], "type": "value_error",
                            "msg": "must be a time between 2000-01-01 and 2099-12-31 (UTC)"}]},
}

_DEFAULT_DESCRIPTIONS = {
    400: "The body could not be read (e.g. malformed JSON).",
    401: "Not signed in, or the token has expired or was revoked.",
    403: "Signed in, but this role or person may not do this.",
    404: "Not found, or not yours to see (a hidden child answers the same).",
    405: "Method not allowed.",
    409: "Conflicts with what is stored.",
    413: "The body is larger than this operation takes.",
    415: "Unsupported media type.",
    422: "A field is missing or invalid: `errors` says where and why.",
    429: "Too many attempts; see Retry-After.",
}

_BODY_METHODS = {"post", "put", "patch"}


def _errors_for(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    statuses = {int(code) for code in operation.get("responses", {})
                if code.isdigit() and int(code) >= 400}
    if operation.get("security"):
        statuses |= {401, 403}
    if "{" in path:
        statuses |= {404, 422}
    if operation.get("parameters"):
        statuses.add(422)
    if method in _BODY_METHODS and "requestBody" in operation:
        statuses |= {400, 413, 422}
    return statuses


def _describe(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components["Problem"] = PROBLEM_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(_errors_for(path, method, operation)):
                answer = responses.setdefault(str(status), {})
                answer.setdefault("description", _DEFAULT_DESCRIPTIONS.get(status, "Error."))
                if answer["description"] == "Validation Error":
                    answer["description"] = _DEFAULT_DESCRIPTIONS[422]
                answer["content"] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
                if path.endswith(".html"):
                    # A page's problem is a page too (core/errors.py), the same words.
                    answer["content"]["text/html"] = {"schema": {"type": "string"}}
            # Two credentials that are sent together (a staff token and a device key) are
            # one requirement, not two alternatives.
            security = operation.get("security")
            if security and any("device_key" in req for req in security):
                operation["security"] = [{"staff": [], "device_key": []}]
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _describe(get_openapi(
                title=app.title, version=app.version, summary=app.summary,
                description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
