"""The callback URL of an SMS session: the provider's signed form POSTs (inbound SMS and
statuses of sent ones). No API key: the ``X-Twilio-Signature`` is the credential."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response

from zapgate.callbacks.sms import SmsCallbacks
from zapgate.engines.sms.config import CALLBACK_PATH
from zapgate.http.admission import client_address
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.names import SESSION_NAME, TENANT_ID

router = APIRouter(prefix="/api/v1", tags=["sms"])
Tenant = Annotated[str, Path(max_length=64, pattern=TENANT_ID)]
Session = Annotated[str, Path(max_length=64, pattern=SESSION_NAME)]
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
"""The answer: TwiML that does nothing (no reply is sent to the SMS)."""


class _TwiML(Response):
    """The answer's class: XML, declared by hand (so its errors are declared as JSON)."""

    media_type = None


def _callbacks(request: Request) -> SmsCallbacks:
    callbacks = services_of(request).sms
    assert callbacks is not None
    return callbacks


_STRING = {"type": "string", "maxLength": 1600}
CALLBACK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The provider's callback, signed: X-Twilio-Signature is the base64 "
        "HMAC-SHA1, with the account's auth token, of the callback URL (the session's "
        "public_url and this path) followed by each form parameter's name and value, sorted "
        "by name",
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "MessageSid": {**_STRING, "example": "SM" + "0" * 32},
                        "AccountSid": _STRING,
                        "From": {**_STRING, "example": "+5511988887777"},
                        "To": {**_STRING, "example": "+5511955550100"},
                        "Body": _STRING,
                        "NumMedia": _STRING,
                        "SmsStatus": _STRING,
                        "MessageStatus": {
                            **_STRING,
                            "description": "a status callback: queued, sending, sent, "
                            "delivered, undelivered or failed",
                        },
                        "ErrorCode": _STRING,
                    },
                    "additionalProperties": {"type": "string"},
                }
            }
        },
    }
}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Recorded; empty TwiML (no reply is sent)",
        "content": {"text/xml": {"schema": {"type": "string"}}},
    },
    **responses(403, 413, 422, 429, authenticated=False),
}
_ANSWERS[403] = {
    **_ANSWERS[403],
    "description": "X-Twilio-Signature is missing or wrong, or there is no such SMS session "
    "(`forbidden`); nothing is stored",
}


@router.post(
    CALLBACK_PATH.removeprefix("/api/v1"),
    response_class=_TwiML,
    responses=_ANSWERS,
    openapi_extra=CALLBACK_BODY,
    summary="The SMS provider's signed callbacks: inbound SMS and statuses of sent ones (403 "
    "if the signature does not match; nothing is stored then)",
)
async def receive_sms_callback(
    request: Request,
    tenant: Tenant,
    session: Session,
    signature: Annotated[
        str | None, Header(alias="X-Twilio-Signature", include_in_schema=False)
    ] = None,
) -> Response:
    body = await request.body()
    query = request.scope.get("query_string", b"").decode("latin-1")
    await _callbacks(request).receive(
        tenant, session, body, signature, query, client_address(request.scope)
    )
    return Response(EMPTY_TWIML, media_type="text/xml")
