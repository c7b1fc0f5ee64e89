"""The one place where errors become HTTP responses: ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from zapgate.errors import AppError, IdempotentReplay
from zapgate.http.responses import Json

log = logging.getLogger(__name__)
REPLAYED = {"Idempotent-Replayed": "true"}


class ErrorBody(BaseModel):
    """Every error response."""

    error: str
    detail: Any = None


def error_response(status: int, error: str, detail: Any = None, **headers: str) -> Json:
    """Render one error."""
    return Json({"error": error, "detail": detail}, status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the error responses a route can give."""
    described = {
        400: "Bad request",
        401: "Missing or invalid API key",
        404: "Not found",
        409: "Conflict with the current state",
        413: "Request body too large",
        422: "Invalid input",
        503: "Temporarily unavailable",
    }
    return {status: {"model": ErrorBody, "description": described[status]} for status in statuses}


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
    async def _http(_request: Request, error: HTTPException) -> Json:
        code = _HTTP_CODES.get(error.status_code, "http_error")
        return error_response(error.status_code, code, error.detail, **(error.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Json:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "an unexpected error was logged")
