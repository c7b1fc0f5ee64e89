"""Request and response bodies of the keys API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from zapgate.auth.service import CONFIGURED as CONFIGURED_NAME
from zapgate.http.deps import Instant
from zapgate.names import SESSION_NAME

ScopeName = Literal["admin", "send", "read", "metrics"]
SessionName = Annotated[StrictStr, Field(pattern=SESSION_NAME)]


class CreateKey(BaseModel):
    """A new key: what it may do, where, and until when."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(
        min_length=1,
        max_length=200,
        examples=["billing app"],
        json_schema_extra={"not": {"const": CONFIGURED_NAME}},
        description="what the key is for (not the configured key's name, ZAPGATE_API_KEY)",
    )
    scopes: list[ScopeName] = Field(
        min_length=1,
        max_length=4,
        description="admin: everything, keys and webhooks included; send: send and read; "
        "read: read only; metrics: GET /metrics only (a key of the default tenant)",
        examples=[["send"]],
    )
    sessions: list[SessionName] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="limit the key to these sessions (absent: all of the tenant's)",
    )
    expires_at: Instant | None = Field(
        default=None,
        description="ISO 8601 (UTC Z or an offset); absent: never (a time already past makes a "
        "key that is refused at once)",
    )

    @field_validator("name")
    @classmethod
    def _not_the_configured_name(cls, value: str) -> str:
        if value == CONFIGURED_NAME:
            raise ValueError(f"{CONFIGURED_NAME!r} is the configured key's name; choose another")
        return value


class KeyOut(BaseModel):
    """A key, without its secret part."""

    id: str
    name: str
    scopes: list[str]
    sessions: list[str] | None
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="when it was last verified (within the verification cache's 30 s)"
    )
    revoked_at: datetime | None


class IssuedKeyOut(KeyOut):
    """A new key with its plaintext, shown only now."""

    key: str = Field(description="zg_...: send as Authorization: Bearer <key>; shown once")
