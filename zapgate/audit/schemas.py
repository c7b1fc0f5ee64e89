"""Response bodies of the audit API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from zapgate.audit.model import Result


class AuditEntryOut(BaseModel):
    """One entry: who did what to what, when, from where, and how it ended."""

    id: str
    timestamp: datetime
    actor: str | None = Field(
        description="the key (key_...), token subject (jwt:<sub>) or cli; null when the caller "
        "could not be identified (a failed authentication)"
    )
    action: str = Field(
        description="the route (method and path template), or the command line's command",
        examples=["POST /api/v1/sessions/{session}/start"],
    )
    target: str | None = Field(
        description="what it acted on: the path's values, or what it created",
        examples=["sessions/main"],
    )
    result: Result = Field(
        description="ok (done), refused (failed authentication or forbidden: 401, 403) or "
        "failed (any other error)"
    )
    status: int | None = Field(description="the HTTP status of the answer; null for the CLI")
    address: str | None = Field(description="the client's address")
    detail: dict[str, Any] | None = Field(
        description="error (code) and reason of a refusal or failure; replayed: an "
        "Idempotency-Key replay; suppressed: failed authentications over the cap not "
        "recorded before this one"
    )


class AuditPage(BaseModel):
    """A page of the audit log, newest first; pass ``next_cursor`` as ``cursor``, with the same
    filters, for the next page."""

    data: list[AuditEntryOut]
    next_cursor: str | None
