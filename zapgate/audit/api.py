"""The audit API: a tenant's admin reads its audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from zapgate.audit.model import ID_PREFIX, MAX_ACTION, MAX_ACTOR, AuditQuery, Result
from zapgate.audit.schemas import AuditPage
from zapgate.clock import from_datetime
from zapgate.http.auth import Admin
from zapgate.http.deps import Instant, services_of
from zapgate.http.errors import responses
from zapgate.http.responses import Json

router = APIRouter(prefix="/api/v1", tags=["audit"])
MAX_PAGE = 500
CURSOR_PATTERN = rf"^{ID_PREFIX}_[0-9A-HJKMNP-TV-Z]{{26}}$"


@router.get(
    "/audit",
    response_model=AuditPage,
    responses=responses(),
    summary="The audit log: every change and every refused attempt, newest first",
)
async def list_audit(
    request: Request,
    caller: Admin,
    actor: Annotated[
        str | None, Query(min_length=1, max_length=MAX_ACTOR, description="only this actor")
    ] = None,
    action: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_ACTION,
            description="only this action, e.g. DELETE /api/v1/keys/{key_id}",
        ),
    ] = None,
    result: Annotated[Result | None, Query(description="only this result")] = None,
    since: Annotated[Instant | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[Instant | None, Query(description="ISO 8601, exclusive")] = None,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="the next_cursor of the previous page (same filters)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Json:
    query = AuditQuery(
        tenant=caller.tenant,
        limit=limit,
        actor=actor,
        action=action,
        result=result,
        since_ms=from_datetime(since) if since else None,
        until_ms=from_datetime(until) if until else None,
        before=cursor,
        unattributed=caller.operator,
    )
    page = await services_of(request).audit.page(query)
    next_cursor = page[-1].id if len(page) == limit else None
    return Json({"data": [entry.public() for entry in page], "next_cursor": next_cursor})
