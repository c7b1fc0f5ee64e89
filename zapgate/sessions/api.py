"""REST routes for sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from zapgate.clock import now_ms
from zapgate.engines.base import Contact, InboundMessage, Location, Media, Poll
from zapgate.http.auth import Admin, Reader, Watcher
from zapgate.http.deps import SessionName, services_of
from zapgate.http.errors import responses
from zapgate.http.idempotency import IdempotencyKey, idempotent
from zapgate.http.openapi import (
    MESSAGE_OPERATIONS,
    SESSION_OPERATIONS,
    also_serves,
    links,
    success,
)
from zapgate.http.responses import Json
from zapgate.ids import ulid
from zapgate.messages.commands import contact_card, media_bytes
from zapgate.messages.schemas import MessageOut
from zapgate.phone import normalize_address, normalize_number
from zapgate.services import Services
from zapgate.sessions import qr as qr_render
from zapgate.sessions.model import Session
from zapgate.sessions.schemas import (
    CreateSession,
    PairingCodeOut,
    PairRequest,
    QrOut,
    SessionOut,
    SimulatedRich,
    UpdateSession,
)

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])
SESSION_LINKS = links("session", "$response.body#/name", SESSION_OPERATIONS)
MESSAGE_LINKS = links("message_id", "$response.body#/id", MESSAGE_OPERATIONS)


@router.get("", response_model=list[SessionOut], responses=responses(), summary="All sessions")
async def list_sessions(request: Request, caller: Watcher) -> Json:
    manager = services_of(request).sessions
    sessions = await manager.list_sessions(caller.tenant)
    allowed = caller.sessions  # a session-limited key lists its sessions only
    shown = [s for s in sessions if allowed is None or s.name in allowed]
    return Json(await manager.describe_all(shown))


@router.post(
    "",
    status_code=201,
    response_model=SessionOut,
    responses={
        **responses(409, 413, 503),
        **success(201, "The session", links=SESSION_LINKS),
    },
    summary="Create a session (and start it unless start is false)",
)
async def create_session(
    request: Request, body: CreateSession, caller: Admin, idempotency_key: IdempotencyKey = None
) -> Json:
    manager = services_of(request).sessions

    def created(session: Session) -> tuple[int, dict[str, Any]]:
        return 201, manager.describe(session)

    return await idempotent(
        request,
        caller.tenant,
        idempotency_key,
        created,
        lambda claim: manager.create(
            caller.tenant, body.name, body.engine, body.config, body.metadata, body.start, claim
        ),
    )


@router.get("/{session}", response_model=SessionOut, responses=responses(404), summary="A session")
async def get_session(request: Request, session: SessionName, caller: Reader) -> Json:
    manager = services_of(request).sessions
    return Json((await manager.describe_all([await manager.get(caller.tenant, session)]))[0])


@router.patch(
    "/{session}",
    response_model=SessionOut,
    responses=responses(404, 413, 503),
    summary="Change config or metadata (config applies at the next start)",
)
async def update_session(
    request: Request, session: SessionName, body: UpdateSession, caller: Admin
) -> Json:
    manager = services_of(request).sessions
    updated = await manager.update(caller.tenant, session, body.config, body.metadata)
    return Json((await manager.describe_all([updated]))[0])


@router.delete(
    "/{session}",
    status_code=204,
    responses=responses(404, 503),
    summary="Stop and delete a session (its queued messages fail)",
)
async def delete_session(request: Request, session: SessionName, caller: Admin) -> Response:
    await services_of(request).sessions.delete(caller.tenant, session)
    return Response(status_code=204)


def _lifecycle_route(action: str, summary: str, errors: tuple[int, ...]) -> None:
    async def handler(request: Request, session: SessionName, caller: Admin) -> Json:
        manager = services_of(request).sessions
        changed = await getattr(manager, action)(caller.tenant, session)
        return Json((await manager.describe_all([changed]))[0])

    handler.__name__ = f"{action}_session"
    router.add_api_route(
        f"/{{session}}/{action}",
        handler,
        methods=["POST"],
        response_model=SessionOut,
        responses=responses(*errors),
        summary=summary,
    )


_lifecycle_route("start", "Start a stopped session", (404, 409, 503))
_lifecycle_route("stop", "Stop a running session", (404, 409, 503))
_lifecycle_route("restart", "Stop (if running) and start again", (404, 503))
_lifecycle_route("logout", "Forget the paired account and stop", (404, 503))


@router.get(
    "/{session}/qr",
    response_model=QrOut,
    responses={
        **responses(404, 409, 503),
        **success(
            200,
            "JSON, or a PNG with Accept: image/png",
            **also_serves("image/png", {"type": "string", "format": "binary"}),
        ),
    },
    summary="The QR to scan (JSON, or PNG with Accept: image/png)",
)
async def get_qr(request: Request, session: SessionName, caller: Admin) -> Response:
    manager = services_of(request).sessions
    await manager.get(caller.tenant, session)
    raw = await manager.qr_anywhere(caller.tenant, session)
    if "image/png" in request.headers.get("accept", ""):
        return Response(qr_render.png(raw), media_type="image/png")
    return Json({"qr": raw, "image": qr_render.data_uri(raw)})


@router.post(
    "/{session}/pair",
    response_model=PairingCodeOut,
    responses=responses(404, 409, 503, 413),
    summary="Get a pairing code to type on the phone (engines that support it)",
)
async def pair(request: Request, session: SessionName, body: PairRequest, caller: Admin) -> Json:
    services = services_of(request)
    phone = normalize_number(body.phone, services.settings.default_country_code)
    code = await services.sessions.pairing_code(caller.tenant, session, phone)
    return Json({"code": code})


@router.get(
    "/{session}/me",
    response_model=dict[str, Any],
    responses=responses(404, 409),
    summary="The connected WhatsApp account",
)
async def me(request: Request, session: SessionName, caller: Reader) -> Json:
    return Json(await services_of(request).sessions.me(caller.tenant, session))


@router.post(
    "/{session}/simulate/scan",
    status_code=204,
    responses=responses(404, 409, 503),
    summary="Simulator: scan the QR that is showing",
)
async def simulate_scan(request: Request, session: SessionName, caller: Admin) -> Response:
    await services_of(request).sessions.simulate_scan(caller.tenant, session)
    return Response(status_code=204)


@router.post(
    "/{session}/simulate/inbound",
    status_code=201,
    response_model=MessageOut,
    responses={
        **responses(404, 409, 413, 503),
        **success(201, "The received message", links=MESSAGE_LINKS),
    },
    summary="Simulator: deliver an inbound message to the session",
)
async def simulate_inbound(
    request: Request, session: SessionName, body: SimulatedRich, caller: Admin
) -> Json:
    services = services_of(request)
    form: Any = body  # one of the generated forms (SIMULATED_MODELS): a send's shape, with from
    sender = normalize_address(form.from_, services.settings.default_country_code)
    if form.type == "text" and form.reply_to is None:
        message = await services.sessions.inject_inbound(caller.tenant, session, sender, form.text)
    else:
        inbound = await simulated(services, caller.tenant, sender, form)
        message = await services.sessions.inject_rich(caller.tenant, session, inbound)
    return Json(message.public(), status_code=201)


async def simulated(services: Services, tenant: str, sender: str, body: Any) -> InboundMessage:
    """The inbound message a simulated phone gets (``body`` is a ``SimulatedRich`` form):
    its file decoded or fetched, and message ids as the engine knows them."""
    engine_ids: dict[str, str | None] = {}
    for field in ("reply_to", "message_id"):
        message_id = getattr(body, field, None)
        if message_id is not None:
            engine_ids[field] = (await services.messages.get(tenant, message_id)).engine_message_id
    media = None
    source = getattr(body, "media", None)
    if source is not None:
        data, declared, filename = await media_bytes(services, source)
        media = Media(data, declared or "", filename)
    location = None
    if body.type == "location":
        location = Location(float(body.latitude), float(body.longitude), body.name, body.address)
    contact = None
    if body.type == "contact":
        card = contact_card(body.contact)
        contact = Contact(card["name"], tuple(card["phones"]), card["vcard"])
    poll = None
    if body.type == "poll":
        poll = Poll(body.poll.name, tuple(body.poll.options), body.poll.selectable_count)
    return InboundMessage(
        engine_message_id=f"sim_{ulid()}",
        sender=sender,
        recipient="",
        kind=body.type,
        text=body.text if body.type == "text" else getattr(body, "caption", None),
        timestamp_ms=now_ms(),
        media=media,
        voice=bool(getattr(body, "voice", False)),
        location=location,
        contact=contact,
        target=engine_ids.get("message_id"),
        emoji=getattr(body, "emoji", None),
        reply_to=engine_ids.get("reply_to"),
        poll=poll,
    )
