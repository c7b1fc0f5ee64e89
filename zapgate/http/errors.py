"""The one place where errors become HTTP responses: ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from zapgate.errors import AppError, IdempotentReplay
from zapgate.http.responses import Json

log = logging.getLogger(__name__)
REPLAYED = {"Idempotent-Replayed": "true"}
UNPARSABLE = "the body is not valid JSON: not UTF-8, nested too deeply or a number too long"


class ErrorBody(BaseModel):
    """Every error response."""

    error: str = Field(
        description="a stable code: invalid_input, unauthorized, not_found, session_not_found, "
        "conflict, rate_limited, quota_exceeded, ...",
        examples=["invalid_input"],
    )
    detail: Any = Field(default=None, description="what went wrong: a text or a list of problems")


def error_response(status: int, error: str, detail: Any = None, **headers: str) -> Json:
    """Render one error."""
    return Json({"error": error, "detail": detail}, status_code=status, headers=headers)


_DESCRIBED = {
    401: "Missing, invalid, revoked or expired API key (`unauthorized`)",
    403: "The key lacks the scope this route needs, or is limited to other sessions (`forbidden`)",
    404: "Not found",
    409: "Conflict with the current state, or a request with this Idempotency-Key is in progress",
    413: "Request body too large (`payload_too_large`)",
    422: "Invalid input (`invalid_input` and more specific codes): a body that is not valid "
    "JSON, a value out of range, a field the route refuses",
    429: "Too many requests (`rate_limited`, with Retry-After) or over a quota (`quota_exceeded`)",
    503: "Temporarily unavailable: retry later",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "always `Bearer`",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "seconds to wait before trying again (rate limits)",
            "schema": {"type": "integer", "minimum": 0},
        },
        "RateLimit": {
            "description": "the remaining quota (IETF RateLimit header fields)",
            "schema": {"type": "string"},
        },
        "RateLimit-Policy": {
            "description": "the limit that applies (IETF RateLimit header fields)",
            "schema": {"type": "string"},
        },
    },
}
AUTHENTICATED = (401, 403, 422, 429)
"""What every authenticated route can answer: no key, not this key's, bad input, over a
limit."""


def responses(*statuses: int, authenticated: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the error responses a route can give.

    Authenticated routes (the default) always declare ``AUTHENTICATED`` as well.
    """
    declared = set(statuses) | (set(AUTHENTICATED) if authenticated else set())
    return {status: _declaration(status) for status in sorted(declared)}


def _declaration(status: int) -> dict[str, Any]:
    declaration: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIBED[status]}
    if status in _HEADERS:
        declaration["headers"] = _HEADERS[status]
    return declaration


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def app_error_response(error: AppError) -> Json:
    """Render an AppError (with its headers; 401 also says how to authenticate)."""
    if isinstance(error, IdempotentReplay):
        return Json(error.body, status_code=error.status, headers=REPLAYED)
    headers = {**error.headers}
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return error_response(error.status, error.code, error.detail, **headers)


def _allowed_methods(request: Request, fallback: str) -> str:
    """Every documented method at this path (the router names only the first route's)."""
    methods: set[str] = set()
    for template, item in request.app.openapi()["paths"].items():
        if _template_pattern(template).fullmatch(request.url.path):
            methods |= {method.upper() for method in item}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods)) or fallback


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}]+\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


def install(app: FastAPI) -> None:
    """Register the handlers."""

    @app.exception_handler(AppError)
    async def _app_error(_request: Request, error: AppError) -> Json:
        return app_error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> Json:
        detail = [
            {"loc": list(item.get("loc", ())), "msg": item.get("msg"), "type": item.get("type")}
            for item in error.errors()
        ]
        return error_response(422, "invalid_input", detail)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> Json:
        if error.status_code == 400:  # FastAPI could not parse a JSON body
            return error_response(422, "invalid_input", UNPARSABLE)
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
        code = _HTTP_CODES.get(error.status_code, "http_error")
        return error_response(error.status_code, code, error.detail, **headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Json:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "an unexpected error was logged")
