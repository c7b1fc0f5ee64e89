"""The hot paths: successful text sends (and simulated inbound messages) served without the
framework's per-request machinery.

``POST /whatsapp/send`` and ``POST /api/v1/sessions/{session}/messages`` carry nearly all the
load; ``POST /api/v1/sessions/{session}/simulate/inbound`` is how tests and benchmarks feed a
simulator session as fast as a real phone would. This ASGI layer reads the body, authenticates,
validates with the same pydantic models and calls the same use case as the FastAPI routes. When
everything succeeds it answers itself; when anything is off (no key, bad JSON, unknown session, a
large body, ...) it hands the request, body included, to FastAPI unchanged, so errors are still
rendered in one place and the routes stay the documented contract.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapgate.auth.scopes import Scope as KeyScope
from zapgate.auth.service import Principal
from zapgate.compat.api import LegacySend, legacy_send_result
from zapgate.errors import AppError
from zapgate.http.boundary import is_json_body
from zapgate.http.errors import app_error_response, error_response
from zapgate.http.ratelimit import ADMITTED
from zapgate.http.responses import direct_json
from zapgate.limits.gate import Admission
from zapgate.messages.commands import send, send_text
from zapgate.messages.schemas import SendText
from zapgate.names import SESSION_NAME
from zapgate.phone import normalize_address
from zapgate.services import Services
from zapgate.sessions.schemas import SimulatedInbound

log = logging.getLogger(__name__)
FAST_BODY_MAX = 256 * 1024
_V1_SEND = re.compile(r"^/api/v1/sessions/(" + SESSION_NAME.strip("^$") + r")/messages$")
_V1_INBOUND = re.compile(r"^/api/v1/sessions/(" + SESSION_NAME.strip("^$") + r")/simulate/inbound$")
_LEGACY_SEND = "/whatsapp/send"
FULL_PATH_HEADERS = frozenset({b"idempotency-key", b"origin"})

Handler = Callable[[Services, str, bytes, str], Awaitable[tuple[int, Any]]]


async def _v1(services: Services, tenant: str, body: bytes, session: str) -> tuple[int, Any]:
    request = SendText.model_validate_json(body)  # a text (other types: ValidationError)
    message = await send(services, tenant, session, request)
    return 202, message.public()


async def _legacy(services: Services, tenant: str, body: bytes, _session: str) -> tuple[int, Any]:
    request = LegacySend.model_validate_json(body)
    session = services.settings.default_session
    number = str(request.number)
    message = await send_text(
        services, tenant, session, number, request.message, whatsapp_only=True
    )
    return 200, legacy_send_result(message)


async def _inbound(services: Services, tenant: str, body: bytes, session: str) -> tuple[int, Any]:
    request = SimulatedInbound.model_validate_json(body)
    sender = normalize_address(request.from_, services.settings.default_country_code)
    message = await services.sessions.inject_inbound(tenant, session, sender, request.text)
    return 201, message.public()


SCOPES: dict[Handler, KeyScope] = {
    _v1: KeyScope.SEND,
    _legacy: KeyScope.SEND,
    _inbound: KeyScope.ADMIN,
}
"""The scope each handler's route needs (``zapgate.http.auth.needs``)."""
ROUTES: dict[Handler, str] = {
    _v1: "/api/v1/sessions/{session}/messages",
    _legacy: _LEGACY_SEND,
    _inbound: "/api/v1/sessions/{session}/simulate/inbound",
}
"""The path template of each handler's route (what the audit log names it by)."""


def authorize(services: Services, principal: Principal, handler: Handler, session: str) -> None:
    """What the routes' scoped dependencies check: Forbidden unless ``principal`` may."""
    principal.require(SCOPES[handler], session or services.settings.default_session)


class SendFastLane:
    """Serves successful sends directly; everything else goes to ``app`` untouched."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = route(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        handler, session = found
        try:
            chunks, complete = await _read(receive)
        except HTTPException as too_large:
            refusal = error_response(too_large.status_code, "payload_too_large", too_large.detail)
            await refusal(scope, receive, send)
            return
        answer = await self._serve(handler, session, scope, b"".join(chunks)) if complete else None
        if answer is None:
            await self.app(scope, _replay(chunks, complete, receive), send)
            return
        await answer(scope, receive, send)

    async def _serve(self, handler: Handler, session: str, scope: Scope, body: bytes) -> Any:
        admission: Admission | None = scope.get(ADMITTED)
        if admission is None:  # no key: the framework answers (401, counted there once)
            return None
        try:
            authorize(self.services, admission.principal, handler, session)
            status, payload = await handler(
                self.services, admission.principal.tenant, body, session
            )
        except AppError as refused:  # the same rendering the routes use; not run twice
            return app_error_response(refused)
        except (ValidationError, ValueError):
            return None
        except Exception:
            log.exception("unhandled error on the send fast lane")
            return error_response(500, "internal_error", "an unexpected error was logged")
        headers = admission.decision.headers() if admission.decision is not None else {}
        return direct_json(status, payload, headers)


def route(scope: Scope) -> tuple[Handler, str] | None:
    """The handler and session of a request the fast lanes may serve, or None."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    if any(name in FULL_PATH_HEADERS for name, _ in scope["headers"]):
        return None  # keyed requests store their answer; browser requests need CORS handling
    if not is_json_body(scope):
        return None  # only JSON bodies were checked at the boundary
    path = scope["path"]
    if path == _LEGACY_SEND:
        return _legacy, ""
    matched = _V1_SEND.match(path)
    if matched:
        return _v1, matched.group(1)
    matched = _V1_INBOUND.match(path)
    return (_inbound, matched.group(1)) if matched else None


async def _read(receive: Receive) -> tuple[list[bytes], bool]:
    """Read the body up to FAST_BODY_MAX; ``complete`` is False if more remains.

    Raises the body limit's HTTPException (413) when a chunk takes the body over the limit.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return chunks, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return chunks, True
        if size > FAST_BODY_MAX:
            return chunks, False


def _replay(chunks: list[bytes], complete: bool, receive: Receive) -> Receive:
    """A receive that first yields what was already read, then continues the original."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": b"".join(chunks), "more_body": not complete}
        return await receive()

    return replay
