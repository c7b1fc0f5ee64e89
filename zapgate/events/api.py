"""The events API: read the log after a cursor, optionally long-polling."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from zapgate.events import repository, stream
from zapgate.http.auth import Caller
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.openapi import also_serves, success
from zapgate.http.responses import Json

router = APIRouter(prefix="/api/v1", tags=["events"])
MAX_SEQ = 2**63 - 1
"""Sequence numbers are 64-bit signed integers in the database."""
SSE_FRAMES = {
    "type": "string",
    "description": "frames `id: <seq>`, `event: <type>`, `data: <the event envelope as JSON>`",
}


class EventOut(BaseModel):
    """The event envelope."""

    id: str
    seq: int
    type: str
    session: str | None
    tenant: str
    timestamp: str
    payload: dict[str, Any]


class EventPage(BaseModel):
    """Events after the cursor, oldest first; pass ``next_after`` as ``after`` to continue."""

    data: list[EventOut]
    next_after: int


@router.get(
    "/events",
    response_model=EventPage,
    responses={
        **responses(),
        **success(
            200,
            "JSON, or Server-Sent Events with Accept: text/event-stream "
            "(id = seq; resume with Last-Event-ID)",
            **also_serves("text/event-stream", SSE_FRAMES),
        ),
    },
    summary="Events after a sequence number (long-poll with wait, or a Server-Sent Events stream)",
)
async def list_events(
    request: Request,
    caller: Caller,
    after: Annotated[
        int, Query(ge=0, le=MAX_SEQ, description="return events with seq greater than this")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    wait: Annotated[float, Query(ge=0, le=60, description="seconds to wait for news")] = 0,
    session: Annotated[str | None, Query(max_length=64, description="only this session")] = None,
    last_event_id: Annotated[
        int | None,
        Header(alias="Last-Event-ID", ge=0, le=MAX_SEQ, description="SSE: resume after this seq"),
    ] = None,
) -> Response:
    services = services_of(request)
    if "text/event-stream" in request.headers.get("accept", ""):
        start = last_event_id if last_event_id is not None else after
        frames = stream.stream(
            services.database, services.bus, caller.tenant, start, session, request.is_disconnected
        )
        return StreamingResponse(
            frames,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    seen = after
    events = await repository.read_after(services.database, caller.tenant, after, limit, session)
    while not events and loop.time() < deadline:
        if not await services.bus.wait_beyond(caller.tenant, seen, deadline - loop.time()):
            break
        seen = services.bus.latest(caller.tenant)
        events = await repository.read_after(
            services.database, caller.tenant, after, limit, session
        )
    next_after = events[-1].seq if events else after
    return Json({"data": [e.envelope() for e in events], "next_after": next_after})
