"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request

from zapgate import __version__
from zapgate.db.database import ping
from zapgate.http.deps import services_of
from zapgate.http.errors import error_response, responses
from zapgate.http.responses import Json

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness (no auth)")
async def health() -> Json:
    return Json({"status": "ok", "version": __version__})


@router.get("/ready", responses=responses(503), summary="Readiness: the database answers (no auth)")
async def ready(request: Request) -> Json:
    try:
        await ping(services_of(request).database)
    except Exception as error:
        return error_response(503, "unavailable", f"database: {type(error).__name__}")
    return Json({"status": "ready"})
