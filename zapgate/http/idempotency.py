"""The ``Idempotency-Key`` header on routes that create something."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Header, Request

from zapgate.http.deps import services_of
from zapgate.idempotency.service import Claim, Render, fingerprint

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Send the same key again to get the stored answer instead of a second effect "
        "(kept 24 h; per tenant; a different body with the same key is refused with 422).",
    ),
]


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
