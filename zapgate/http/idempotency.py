"""The ``Idempotency-Key`` header on routes that create something."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Header, Request

from zapgate.http.deps import services_of
from zapgate.http.responses import Json
from zapgate.idempotency.service import KEY_PATTERN, Claim, Render, fingerprint

T = TypeVar("T")
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        pattern=KEY_PATTERN.pattern,
        description="Send the same key again to get the stored answer instead of a second effect "
        "(kept 24 h; per tenant; a different body with the same key is refused with 422).",
    ),
]


async def idempotent(
    request: Request,
    tenant: str,
    key: str | None,
    render: Callable[[T], tuple[int, Any]],
    produce: Callable[[Claim | None], Awaitable[T]],
    stored: Callable[[T], tuple[int, Any]] | None = None,
) -> Json:
    """Run ``produce`` under the key's claim and answer what ``render`` makes of its result.

    ``stored`` renders the answer kept for replays when it must differ (no secrets at rest).
    """
    async with claimed(request, tenant, key, stored or render) as claim:
        result = await produce(claim)
    status, payload = render(result)
    return Json(payload, status_code=status)


@asynccontextmanager
async def claimed(
    request: Request, tenant: str, key: str | None, render: Render
) -> AsyncIterator[Claim | None]:
    """A Claim for ``key`` while the request runs (None without a key)."""
    if key is None:
        yield None
        return
    idempotency = services_of(request).idempotency
    body = await request.body()
    claim = await idempotency.begin(
        tenant, key, fingerprint(request.method, request.url.path, body), render
    )
    try:
        yield claim
    finally:
        idempotency.end(claim)
