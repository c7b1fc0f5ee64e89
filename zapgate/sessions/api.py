"""REST routes for sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request

from zapgate.http.auth import Caller
from zapgate.http.deps import SessionName, services_of
from zapgate.http.errors import responses
from zapgate.http.responses import Json
from zapgate.messages.schemas import MessageOut
from zapgate.phone import normalize_number
from zapgate.sessions.schemas import SessionOut, SimulatedInbound

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


@router.get("", response_model=list[SessionOut], responses=responses(401), summary="All sessions")
async def list_sessions(request: Request, caller: Caller) -> Json:
    sessions = await services_of(request).sessions.list_sessions(caller.tenant)
    return Json([session.public() for session in sessions])


@router.get(
    "/{session}", response_model=SessionOut, responses=responses(401, 404, 422), summary="A session"
)
async def get_session(request: Request, session: SessionName, caller: Caller) -> Json:
    found = await services_of(request).sessions.get(caller.tenant, session)
    return Json(found.public())


@router.post(
    "/{session}/simulate/inbound",
    status_code=201,
    response_model=MessageOut,
    responses=responses(401, 404, 409, 422),
    summary="Simulator: deliver an inbound message to the session",
)
async def simulate_inbound(
    request: Request, session: SessionName, body: SimulatedInbound, caller: Caller
) -> Json:
    services = services_of(request)
    sender = normalize_number(body.from_, services.settings.default_country_code)
    message = await services.sessions.inject_inbound(caller.tenant, session, sender, body.text)
    return Json(message.public(), status_code=201)
