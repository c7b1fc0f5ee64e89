"""The callback URL of a Cloud API session: Meta's verify handshake (GET) and its signed
deliveries (POST). No API key: the verify token and the signature are the credentials."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from zapgate.callbacks.cloudapi import CloudApiCallbacks
from zapgate.http.admission import client_address
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.responses import Json
from zapgate.names import SESSION_NAME, TENANT_ID

router = APIRouter(prefix="/api/v1", tags=["cloudapi"])
CALLBACK_PATH = "/cloudapi/{tenant}/{session}/webhook"
Tenant = Annotated[str, Path(max_length=64, pattern=TENANT_ID)]
Session = Annotated[str, Path(max_length=64, pattern=SESSION_NAME)]


class Received(BaseModel):
    """What the callback held (Meta only needs the 200)."""

    messages: int = Field(description="received messages recorded (repeats included)")
    statuses: int = Field(description="statuses of sent messages applied")
    errors: list[str] = Field(description="errors Meta reported, as zapgate words them")
    other_numbers: list[str] = Field(
        description="phone number ids the callback was about that no session of the tenant has"
    )


class _Challenge(PlainTextResponse):
    """The handshake's answer: text, declared by hand (so its errors are declared as JSON)."""

    media_type = None  # type: ignore[assignment]


def _callbacks(request: Request) -> CloudApiCallbacks:
    callbacks = services_of(request).cloudapi
    assert callbacks is not None
    return callbacks


@router.get(
    CALLBACK_PATH,
    response_class=_Challenge,
    responses={
        200: {
            "description": "The challenge, echoed",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **responses(403, 422, 429, authenticated=False),
    },
    summary="Meta's verify handshake: echoes hub.challenge when hub.verify_token matches",
)
async def verify_callback_url(
    request: Request,
    tenant: Tenant,
    session: Session,
    mode: Annotated[str, Query(alias="hub.mode", max_length=32)],
    token: Annotated[str, Query(alias="hub.verify_token", max_length=256)],
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=256)],
) -> PlainTextResponse:
    answer = await _callbacks(request).handshake(
        tenant, session, mode, token, challenge, client_address(request.scope)
    )
    return PlainTextResponse(answer, media_type="text/plain")


CALLBACK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Meta's callback, signed: X-Hub-Signature-256 is sha256=<hex HMAC-SHA256 "
        "of these exact bytes with the app secret>",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "object": {"type": "string", "example": "whatsapp_business_account"},
                        "entry": {"type": "array", "items": {"type": "object"}},
                    },
                }
            }
        },
    }
}


@router.post(
    CALLBACK_PATH,
    response_model=Received,
    responses=responses(401, 413, 422, 429, 503, authenticated=False),
    openapi_extra=CALLBACK_BODY,
    summary="Meta's signed callbacks: messages, statuses and errors (401 if the signature "
    "does not match; nothing is stored then)",
)
async def receive_callback(
    request: Request,
    tenant: Tenant,
    session: Session,
    signature: Annotated[
        str | None, Header(alias="X-Hub-Signature-256", include_in_schema=False)
    ] = None,
) -> Json:
    body = await request.body()
    handled = await _callbacks(request).receive(
        tenant, session, body, signature, client_address(request.scope)
    )
    return Json(
        {
            "messages": handled.messages,
            "statuses": handled.statuses,
            "errors": handled.errors,
            "other_numbers": sorted(handled.other_numbers),
        }
    )
