"""The events API: read the log after a cursor, optionally long-polling."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from zapgate.auth.scopes import Scope as KeyScope
from zapgate.auth.service import Principal
from zapgate.events import repository, stream
from zapgate.http.auth import Watcher
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.openapi import also_serves, success
from zapgate.http.responses import Json
from zapgate.limits.streams import StreamSlot
from zapgate.validation import INT64_MAX

router = APIRouter(prefix="/api/v1", tags=["events"])
MAX_SEQ = INT64_MAX
"""Sequence numbers are 64-bit signed integers in the database."""
SSE_FRAMES = {
    "type": "string",
    "description": "frames `id: <seq>`, `event: <type>`, `data: <the event envelope as JSON>`",
}


class SlotStreamingResponse(StreamingResponse):
    """A stream that holds one of its key's stream slots until it ends, however it ends."""

    def __init__(self, slot: StreamSlot, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slot.release()


class EventOut(BaseModel):
    """The event envelope."""

    id: str
    seq: int
    type: str
    session: str | None
    channel: str | None = Field(
        description="whatsapp, telegram or sms: the channel of its session (null: no session)"
    )
    tenant: str
    timestamp: str
    actor: str | None = Field(
        description="the key (key_...) or token subject (jwt:<sub>) whose request caused it; "
        "null for what engines and background work report"
    )
    request_id: str | None = Field(
        description="the X-Request-Id of the request that caused it: the request being served "
        "when it was written, or for message.sent and message.status the one that queued the "
        "message; null for what engines report by themselves"
    )
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
    caller: Watcher,
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
    visible = _visible(caller, session)

    async def gone() -> bool:
        """The client left, or its key was revoked, its tenant suspended or its key has
        expired: the stream ends."""
        if services.auth.refuses(caller):
            return True
        return await request.is_disconnected()

    if "text/event-stream" in request.headers.get("accept", ""):
        slot = await services.limits.open_stream(caller.tenant, caller.key_id)
        start = last_event_id if last_event_id is not None else after
        frames = stream.stream(services.database, services.bus, caller.tenant, start, visible, gone)
        return SlotStreamingResponse(
            slot,
            frames,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    if wait <= 0:
        events = await repository.read_after(
            services.database, caller.tenant, after, limit, visible, stream.PAGE_BYTES
        )
    else:
        with await services.limits.open_stream(caller.tenant, caller.key_id):
            events = await stream.long_poll(
                services.database,
                services.bus,
                caller.tenant,
                after,
                limit,
                visible,
                wait,
                gone,
            )
    next_after = events[-1].seq if events else after
    return Json({"data": [e.envelope() for e in events], "next_after": next_after})


def _visible(caller: Principal, asked: str | None) -> str | frozenset[str] | None:
    """The sessions whose events the caller gets: the one it asked for (if it may), else all it
    may see (a session-limited key: only its sessions, without having to name them)."""
    if caller.sessions is None:
        return asked
    if asked is None:
        return caller.sessions
    caller.require(KeyScope.READ, asked)  # Forbidden for a session the key is not limited to
    return asked
