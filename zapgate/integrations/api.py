"""REST routes of the session integrations (Chatwoot mirror, bot) and Chatwoot's callback."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from zapgate.clock import to_iso
from zapgate.http.admission import client_address
from zapgate.http.auth import Admin, Reader, Sender
from zapgate.http.deps import SessionName, services_of
from zapgate.http.errors import responses
from zapgate.http.responses import Json
from zapgate.integrations.chatwoot.callback import ChatwootCallbacks
from zapgate.integrations.schemas import (
    BotOut,
    ChatwootOut,
    IntegrationDeliveryPage,
    PausedChat,
    PausedChats,
    PutBot,
    PutChatwoot,
)
from zapgate.integrations.service import IntegrationService
from zapgate.names import SESSION_NAME, TENANT_ID
from zapgate.webhooks.api import deliveries_page
from zapgate.webhooks.model import Kind, Webhook

router = APIRouter(prefix="/api/v1", tags=["integrations"])
ChatName = Annotated[str, Path(min_length=1, max_length=128, description="a number or chat id")]
Tenant = Annotated[str, Path(max_length=64, pattern=TENANT_ID)]
CallbackSession = Annotated[str, Path(max_length=64, pattern=SESSION_NAME)]


def _service(request: Request) -> IntegrationService:
    return services_of(request).integrations


def _common(found: Webhook) -> dict[str, Any]:
    return {
        "session": found.sessions[0],
        "active": found.active,
        "disabled_reason": found.disabled_reason,
        "consecutive_failures": found.consecutive_failures,
        "created_at": to_iso(found.created_at),
        "updated_at": to_iso(found.updated_at),
    }


def _chatwoot(service: IntegrationService, found: Webhook) -> dict[str, Any]:
    config = found.config
    return {
        **_common(found),
        "base_url": config["base_url"],
        "account_id": config["account_id"],
        "inbox_id": config["inbox_id"],
        "callback_url": service.callback_url(found),
        "signature_checked": bool(config.get("webhook_secret")),
    }


def _bot(found: Webhook, secret: str | None = None) -> dict[str, Any]:
    config = found.config
    return {
        **_common(found),
        "url": found.url,
        "filter": config.get("filter") or {},
        "timeout_seconds": float(config.get("timeout_seconds") or 10),
        "secret": secret,
    }


@router.get(
    "/sessions/{session}/integrations/chatwoot",
    response_model=ChatwootOut,
    responses=responses(404),
    summary="The session's Chatwoot mirror",
)
async def get_chatwoot(request: Request, session: SessionName, caller: Admin) -> Json:
    service = _service(request)
    return Json(_chatwoot(service, await service.get(caller.tenant, session, Kind.CHATWOOT)))


@router.put(
    "/sessions/{session}/integrations/chatwoot",
    response_model=ChatwootOut,
    responses=responses(404, 413, 503),
    summary="Mirror the session into a Chatwoot API inbox (paste callback_url into the inbox)",
)
async def put_chatwoot(
    request: Request, session: SessionName, body: PutChatwoot, caller: Admin
) -> Json:
    service = _service(request)
    found, _ = await service.put(caller.tenant, session, Kind.CHATWOOT, body.model_dump())
    return Json(_chatwoot(service, found))


@router.delete(
    "/sessions/{session}/integrations/chatwoot",
    status_code=204,
    responses=responses(404, 503),
    summary="Stop mirroring the session into Chatwoot",
)
async def delete_chatwoot(request: Request, session: SessionName, caller: Admin) -> Response:
    await _service(request).delete(caller.tenant, session, Kind.CHATWOOT)
    return Response(status_code=204)


@router.get(
    "/sessions/{session}/integrations/bot",
    response_model=BotOut,
    responses=responses(404),
    summary="The session's bot",
)
async def get_bot(request: Request, session: SessionName, caller: Admin) -> Json:
    return Json(_bot(await _service(request).get(caller.tenant, session, Kind.BOT)))


@router.put(
    "/sessions/{session}/integrations/bot",
    response_model=BotOut,
    responses=responses(404, 413, 503),
    summary="Let a bot answer the session's chats (its secret is shown when it is created)",
)
async def put_bot(request: Request, session: SessionName, body: PutBot, caller: Admin) -> Json:
    fields = body.model_dump()
    found, secret = await _service(request).put(caller.tenant, session, Kind.BOT, fields)
    return Json(_bot(found, secret))


@router.delete(
    "/sessions/{session}/integrations/bot",
    status_code=204,
    responses=responses(404, 503),
    summary="Remove the session's bot",
)
async def delete_bot(request: Request, session: SessionName, caller: Admin) -> Response:
    await _service(request).delete(caller.tenant, session, Kind.BOT)
    return Response(status_code=204)


@router.get(
    "/sessions/{session}/integrations/bot/chats",
    response_model=PausedChats,
    responses=responses(404),
    summary="The chats a human took over from the bot",
)
async def list_paused_chats(request: Request, session: SessionName, caller: Reader) -> Json:
    found = await _service(request).paused(caller.tenant, session)
    data = [{"chat": chat, "paused": True, "paused_at": to_iso(at)} for chat, at in found]
    return Json({"data": data})


@router.post(
    "/sessions/{session}/integrations/bot/chats/{chat}/pause",
    response_model=PausedChat,
    responses=responses(404, 503),
    summary="A human takes the chat over: the bot is not asked about it until it is resumed",
)
async def pause_chat(
    request: Request, session: SessionName, chat: ChatName, caller: Sender
) -> Json:
    chat_id = await _chat(request, caller.tenant, session, chat)
    since = await _service(request).pause(caller.tenant, session, chat_id)
    return Json({"chat": chat_id, "paused": True, "paused_at": to_iso(since)})


@router.post(
    "/sessions/{session}/integrations/bot/chats/{chat}/resume",
    response_model=PausedChat,
    responses=responses(404, 503),
    summary="The bot answers the chat again",
)
async def resume_chat(
    request: Request, session: SessionName, chat: ChatName, caller: Sender
) -> Json:
    chat_id = await _chat(request, caller.tenant, session, chat)
    await _service(request).resume(caller.tenant, session, chat_id)
    return Json({"chat": chat_id, "paused": False, "paused_at": None})


@router.get(
    "/sessions/{session}/integrations/{kind}/deliveries",
    response_model=IntegrationDeliveryPage,
    responses=responses(404),
    summary="What the integration was sent, and every attempt (why a bot did not answer)",
)
async def list_integration_deliveries(
    request: Request,
    session: SessionName,
    kind: Literal["chatwoot", "bot"],
    caller: Admin,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: Literal["pending", "succeeded", "failed"] | None = None,
) -> Json:
    service = _service(request)
    page = await service.deliveries(caller.tenant, session, kind, limit, cursor, status)
    return deliveries_page(page, limit)


async def _chat(request: Request, tenant: str, session: str, raw: str) -> str:
    """The chat id ``raw`` names in the session (a number, or a chat id as it is)."""
    from zapgate.messages.commands import channel_chat  # the send use cases import services
    from zapgate.phone import chat_id, normalize_address

    services = services_of(request)
    named = await channel_chat(services, tenant, session, raw)
    if named is not None:
        return named
    if "@" in raw:  # a chat id (a group's, a LID) as it is
        return raw
    return chat_id(normalize_address(raw, services.settings.default_country_code))


class Handled(BaseModel):
    """What zapgate did with Chatwoot's call (Chatwoot only needs the 2xx)."""

    status: str = Field(description="sent, or ignored (its own messages, incoming ones, notes)")
    reason: str | None = None
    message_id: str | None = Field(default=None, description="the WhatsApp message queued")


CALLBACK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A Chatwoot webhook event (message_created, ...) of the mirror's inbox",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def _callbacks(request: Request) -> ChatwootCallbacks:
    return services_of(request).chatwoot


@router.post(
    "/chatwoot/{tenant}/{session}/webhook",
    response_model=Handled,
    responses=responses(401, 413, 422, 429, 503, authenticated=False),
    openapi_extra=CALLBACK_BODY,
    summary="Chatwoot's webhook for a mirrored session: agents' replies go to WhatsApp (the "
    "URL's token is the credential)",
)
async def chatwoot_webhook(
    request: Request,
    tenant: Tenant,
    session: CallbackSession,
    token: Annotated[str | None, Query(max_length=200, include_in_schema=False)] = None,
) -> Json:
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    handled = await _callbacks(request).receive(
        tenant, session, token, body, headers, client_address(request.scope)
    )
    return Json(
        {"status": handled.status, "reason": handled.reason, "message_id": handled.message_id}
    )
