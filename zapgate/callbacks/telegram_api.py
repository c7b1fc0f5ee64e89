"""The webhook of a Telegram session (webhook mode): Telegram POSTs each update here with the
session's secret token. No API key: the secret token is the credential."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from pydantic import BaseModel, Field

from zapgate.callbacks.telegram import CREDENTIAL_HEADER, TelegramCallbacks
from zapgate.engines.telegram.config import CALLBACK_PATH
from zapgate.http.admission import client_address
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.responses import Json
from zapgate.names import SESSION_NAME, TENANT_ID

router = APIRouter(prefix="/api/v1", tags=["telegram"])
Tenant = Annotated[str, Path(max_length=64, pattern=TENANT_ID)]
Session = Annotated[str, Path(max_length=64, pattern=SESSION_NAME)]


class Received(BaseModel):
    """What the update held (Telegram only needs the 200)."""

    updates: int = Field(description="updates read (1)")
    messages: int = Field(description="received messages and reactions recorded (repeats too)")
    events: int = Field(description="edits recorded")
    ignored: int = Field(description="updates of a type zapgate does not record")


UPDATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A Telegram Update, sent with the session's secret token in "
        f"{CREDENTIAL_HEADER} (checked before the body is read)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "update_id": {"type": "integer"},
                        "message": {"type": "object"},
                    },
                }
            }
        },
    }
}


def _callbacks(request: Request) -> TelegramCallbacks:
    callbacks = services_of(request).telegram
    assert callbacks is not None
    return callbacks


@router.post(
    CALLBACK_PATH.removeprefix("/api/v1"),
    response_model=Received,
    responses=responses(401, 413, 422, 429, 503, authenticated=False),
    openapi_extra=UPDATE_BODY,
    summary="Telegram's webhook: one update (401 if the secret token does not match; nothing "
    "is stored then)",
)
async def receive_update(
    request: Request,
    tenant: Tenant,
    session: Session,
    secret: Annotated[str | None, Header(alias=CREDENTIAL_HEADER, include_in_schema=False)] = None,
) -> Json:
    body = await request.body()
    handled = await _callbacks(request).receive(
        tenant, session, body, secret, client_address(request.scope)
    )
    return Json(
        {
            "updates": handled.updates,
            "messages": handled.messages,
            "events": handled.events,
            "ignored": handled.ignored,
        }
    )
