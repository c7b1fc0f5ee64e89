"""The send hot path at the HTTP protocol: a successful send answered without ASGI.

Under ``zapgate serve`` uvicorn parses HTTP with httptools, then hands every request to the ASGI
app: nine middleware layers, two ``send`` messages and two socket writes per answer, most of a
send's CPU. :class:`HotPath` takes the requests :func:`zapgate.http.fastlane.route` would serve
(a JSON send or simulated inbound with no Idempotency-Key and no Origin) before that, once
their whole body is in: it admits them through the same :class:`~zapgate.limits.gate.Gate`,
applies the same body limit and boundary checks, waits the key's concurrency turn, calls the
same handler and writes the answer in one write. Whatever it does not answer (a bad body, an
unknown session, anything unusual) goes to the ASGI app unchanged, with its admission already
made, so every error is still rendered, and counted, in one place.

:func:`protocol` is the uvicorn HTTP protocol (``uvicorn.run(http=...)``) that routes to it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from zapgate.audit import actor as actors
from zapgate.errors import AppError
from zapgate.http import access
from zapgate.http.admission import client_address, presented_key, refuse, request_cost
from zapgate.http.audit import AuditTrail
from zapgate.http.boundary import body_problems, url_problems
from zapgate.http.errors import app_error_response, error_response
from zapgate.http.fastlane import ROUTES, Handler, authorize, route
from zapgate.http.limits import declared_length
from zapgate.http.ratelimit import ADMITTED, RateLimitHeaders, remember_decision
from zapgate.http.responses import json_body
from zapgate.limits.gate import Admission
from zapgate.requests import REQUEST_ID, from_headers
from zapgate.services import Services

log = logging.getLogger(__name__)
HOT_BODY_MAX = 64 * 1024
"""Largest body served here: uvicorn stops reading a request past 64 KiB until the app reads,
and a send is a few hundred bytes."""


class HotPath:
    """Serves successful sends straight from uvicorn's request cycle."""

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        # auth off: the loopback guard decides; tracing on: the ASGI app makes each span
        self._enabled = settings.auth == "on" and services.tracing is None
        self._body_max = min(settings.max_body_bytes, HOT_BODY_MAX)
        self._proxy: ProxyHeadersMiddleware | None = None
        self._trail = AuditTrail(services.audit)
        self.served = 0
        """Requests answered here (not handed to the ASGI app)."""

    def trust_proxies(self, trusted: list[str] | str) -> None:
        """Take client addresses from ``X-Forwarded-For`` of these peers, as uvicorn does."""
        self._proxy = ProxyHeadersMiddleware(cast(Any, _nothing), trusted_hosts=trusted)

    def wants(self, scope: Scope) -> tuple[Handler, str] | None:
        """The handler and session of a request this path serves, or None."""
        if not self._enabled:
            return None
        found = route(scope)
        if found is None:
            return None
        length = declared_length(scope)
        return found if length is not None and length <= self._body_max else None

    async def serve(
        self, cycle: RequestResponseCycle, handler: Handler, session: str, app: ASGIApp
    ) -> None:
        """Answer the request of ``cycle``, or hand it to ``app``; never raises."""
        token = REQUEST_ID.set(from_headers(cast(Any, cycle.scope)["headers"]))
        with actors.acting():  # what the send writes carries its caller (zapgate.audit.actor)
            try:
                await self._serve(cycle, handler, session, app)
            except Exception:
                log.exception("unhandled error on the send hot path")
                if not cycle.response_started:
                    await _run(cycle, error_response(500, "internal_error", "an error was logged"))
                else:
                    cycle.transport.close()
            finally:
                REQUEST_ID.reset(token)

    async def _serve(
        self, cycle: RequestResponseCycle, handler: Handler, session: str, app: ASGIApp
    ) -> None:
        began = time.perf_counter()
        if not await _whole_body(cycle):
            return  # the client went away before sending it: nothing was done
        scope: Scope = cast(Any, cycle.scope)
        if self._proxy is not None:
            await self._proxy(cast(Any, scope), _NEVER, _NEVER)
        presented = presented_key(scope)
        address = client_address(scope)
        gate = self.services.gate
        if presented is None or gate.refusal_for(presented, address) is not None:
            await _hand_over(cycle, app)  # no key or a blocked address: the middleware answers
            return
        try:
            admission = await gate.admit(presented, address, request_cost(scope))
        except AppError as refused:
            await self._audit(scope, handler, session, refused)
            await _run(cycle, _identified(_refusal(refused)))  # as the middleware refuses
            self._count(handler, scope, refused.status, began)
            return
        scope[ADMITTED] = admission
        remember_decision(scope, admission.decision)
        body = bytes(cycle.body)
        if url_problems(scope) or body_problems(body):
            await _hand_over(cycle, app)
            return
        answer = await self._answer(handler, session, admission, body)
        if answer is None:
            await _hand_over(cycle, app)
        elif isinstance(answer, AppError):
            await self._audit(scope, handler, session, answer)
            await _run(cycle, _identified(RateLimitHeaders(app_error_response(answer))))
            self._count(handler, scope, answer.status, began)
        else:
            await _write(cycle, *answer)
            self.served += 1
            self._count(handler, scope, answer[0], began)

    def _count(self, handler: Handler, scope: Scope, status: int, began: float) -> None:
        """An answer given here, counted and logged as the ASGI app's are."""
        settings = self.services.settings
        elapsed = time.perf_counter() - began
        access.observe(
            scope, ROUTES[handler], status, elapsed, self.services.metrics, settings.access_log
        )

    async def _audit(self, scope: Scope, handler: Handler, session: str, error: AppError) -> None:
        """Record a 401 or 403 answered here, as the audit middleware records the others."""
        route = ROUTES[handler], {"session": session} if session else {}
        await self._trail.refusal(scope, actors.opened(), error, route)

    async def _answer(
        self, handler: Handler, session: str, admission: Admission, body: bytes
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | AppError | None:
        principal = admission.principal
        turns = self.services.gate.limits.concurrency
        async with turns.turn(principal.key_id, admission.limits.concurrent_per_key):
            try:
                authorize(self.services, principal, handler, session)
                status, payload = await handler(self.services, principal.tenant, body, session)
            except AppError as refused:
                return refused
            except ValueError:  # pydantic's ValidationError too: the route renders the 422
                return None
        headers = admission.decision.headers() if admission.decision is not None else {}
        content, raw = json_body(payload, headers)
        return status, content, raw


def protocol(hot: HotPath) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, with the requests ``hot`` wants served by it."""

    class HotPathProtocol(HttpToolsProtocol):
        def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
            # ``app`` is not ``self.app`` when uvicorn answers 503 over its concurrency limit
            found = hot.wants(cast(Any, cycle.scope)) if app is self.app else None
            if found is None or cycle.waiting_for_100_continue:
                super()._start_asgi_task(cycle, app)
                return
            task = self.loop.create_task(hot.serve(cycle, *found, app))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)

    return HotPathProtocol


async def _whole_body(cycle: RequestResponseCycle) -> bool:
    """Wait until the body is in ``cycle.body``; False if the client disconnected first."""
    while cycle.more_body and not cycle.disconnected:
        cycle.flow.resume_reading()
        await cycle.message_event.wait()
        cycle.message_event.clear()
    return not cycle.disconnected


async def _run(cycle: RequestResponseCycle, app: ASGIApp) -> None:
    """``cycle.run_asgi`` (uvicorn types ASGI apps more narrowly than Starlette)."""
    await cycle.run_asgi(cast(Any, app))


async def _hand_over(cycle: RequestResponseCycle, app: ASGIApp) -> None:
    """Run the ASGI app on the request; its ``receive`` yields the body still in the cycle."""
    cycle.message_event.set()
    await _run(cycle, app)


def _identified(app: ASGIApp) -> ASGIApp:
    """``app`` with the request's ``X-Request-Id`` on its answer."""

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        header = (b"x-request-id", (REQUEST_ID.get() or "").encode())

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await app(scope, receive, sending)

    return answer


def _refusal(error: AppError) -> ASGIApp:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await refuse(error, scope, receive, send)

    return answer


async def _write(
    cycle: RequestResponseCycle, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """What ``cycle.send`` writes for a start and a whole body, in one write."""
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected:
        return
    content = [STATUS_LINE[status]]
    rid = (REQUEST_ID.get() or "").encode()
    for name, value in (*cycle.default_headers, *headers, (b"x-request-id", rid)):
        content += (name, b": ", value, b"\r\n")
    if not cycle.keep_alive:
        content.append(b"connection: close\r\n")
    content += (b"\r\n", body)
    cycle.response_started = cycle.response_complete = True
    cycle.transport.write(b"".join(content))
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    cycle.on_response()


async def _nothing(_scope: Scope, _receive: Receive, _send: Send) -> None:
    """The app behind the proxy-headers middleware: only its change to the scope is wanted."""


async def _never(*_args: Any) -> Any:
    raise AssertionError("the proxy headers middleware neither receives nor sends")


_NEVER: Any = _never
