"""Request and response bodies of the sessions API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class SessionOut(BaseModel):
    """A session and its state."""

    name: str
    engine: str
    status: str = Field(
        description="STOPPED, STARTING, SCAN_QR_CODE, WORKING, DISCONNECTED, FAILED"
    )
    reason: str | None = Field(description="why the session is FAILED or DISCONNECTED")
    me: dict[str, Any] | None = Field(description="the connected account, once paired")
    config: dict[str, Any]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SimulatedInbound(BaseModel):
    """A message the simulated phone receives."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: StrictStr = Field(alias="from", min_length=1, max_length=64, examples=["5511988887777"])
    text: StrictStr = Field(min_length=1, max_length=65_536, examples=["Oi!"])
