"""Admission before the framework: every request that presents a key is authenticated and
counted here, and a refusal is answered here, so a flood of refused requests costs next to
nothing (the framework's per-request machinery costs several times more than the refusal).

A rate-limited request is answered after a pause (``zapgate.limits.tarpit``), so a flood gets
one or two answers a second per connection instead of all the server can produce.
The routes find the admission in the scope and do not count the request twice. An admitted
request then waits its turn among its key's requests in progress (``concurrent_per_key``), so
however much one key sends, only a few of its requests share the event loop with everyone else.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from zapgate.errors import AppError, RateLimited
from zapgate.http.errors import app_error_response
from zapgate.http.ratelimit import ADMITTED, remember_decision
from zapgate.limits.gate import Admission, Gate
from zapgate.limits.tarpit import pause_before_refusal

BODY_COST_BYTES = 64 * 1024
EVENTS_PATH = "/api/v1/events"
OPEN_PATHS = frozenset(
    {
        *("/health", "/ready", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/metrics"),
        *("/", "/dashboard"),
    }
)
"""Paths admitted without a key here (``/metrics`` checks its own token or key)."""
OPEN_PREFIX = "/dashboard/assets/"
"""The dashboard's files: no key either."""
"""Routes that need no key: a key sent to them anyway is not checked."""


class AdmissionMiddleware:
    """Authenticates and rate-limits every keyed request before the framework sees it."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self._gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _open(scope["path"]):
            await self.app(scope, receive, send)
            return
        admission = scope.get(ADMITTED)  # admitted by the send hot path, which handed it over
        if admission is None:
            admission = await self._admit(scope, receive, send)
            if admission is None:
                return
        if _is_stream(scope):  # bounded by the key's stream slots instead
            await self.app(scope, receive, send)
            return
        key, limit = admission.principal.key_id, admission.limits.concurrent_per_key
        async with self._gate.limits.concurrency.turn(key, limit):
            await self.app(scope, receive, send)

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> Admission | None:
        """The request's admission; None once it is answered (refused, or by a route with no
        key)."""
        presented = presented_key(scope)
        address = client_address(scope)
        early = self._gate.refusal_for(presented, address)
        if early is not None:
            await refuse(early, scope, receive, send)
            return None
        if presented is None:  # the route decides: open, or 401 (counted as a failure there)
            await self.app(scope, receive, send)
            return None
        try:
            admission = await self._gate.admit(presented, address, request_cost(scope))
        except AppError as refused:
            await refuse(refused, scope, receive, send)
            return None
        scope[ADMITTED] = admission
        remember_decision(scope, admission.decision)
        return admission


def _is_stream(scope: Scope) -> bool:
    """An SSE stream or a long-poll: requests that wait rather than work."""
    if scope["path"] != EVENTS_PATH:
        return False
    accept = next((value for name, value in scope["headers"] if name == b"accept"), b"")
    if b"text/event-stream" in accept:  # the first Accept header, as the route reads it
        return True
    waits = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("wait", ["0"])
    try:
        return float(waits[-1]) > 0
    except ValueError:
        return False  # the route refuses it (422)


async def refuse(error: AppError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a refused admission (after the tarpit's pause when over the rate)."""
    if isinstance(error, RateLimited):
        await pause_before_refusal(error.retry_after)
    await app_error_response(error)(scope, receive, send)


def request_cost(scope: Scope) -> int:
    """Tokens a request takes: one, and one more per ``BODY_COST_BYTES`` of declared body, so
    a key cannot make the server parse megabytes at its full request rate."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return 1 + int(value) // BODY_COST_BYTES
            except ValueError:
                return 1
    return 1


def presented_key(scope: Scope) -> str | None:
    """The key of ``Authorization: Bearer`` or ``X-Api-Key``."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif name == b"x-api-key":
            return value.decode("latin-1")
    return None


def client_address(scope: Scope) -> str | None:
    """The peer's address (no proxy headers are trusted)."""
    client = scope.get("client")
    return str(client[0]) if client else None


def _open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIX)
