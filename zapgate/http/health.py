"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from zapgate import __version__
from zapgate.db.database import ping
from zapgate.http.deps import services_of
from zapgate.http.errors import error_response, responses
from zapgate.http.responses import Json

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The process answers."""

    status: str
    version: str


class Ready(BaseModel):
    """The database answers."""

    status: str


@router.get("/health", response_model=Health, summary="Liveness (no auth)")
async def health() -> Json:
    return Json({"status": "ok", "version": __version__})


@router.get(
    "/ready",
    response_model=Ready,
    responses=responses(503, authenticated=False),
    summary="Readiness: the database answers (no auth)",
)
async def ready(request: Request) -> Json:
    try:
        await ping(services_of(request).database)
    except Exception as error:
        return error_response(503, "unavailable", f"database: {type(error).__name__}")
    return Json({"status": "ready"})
