"""The audit trail of the HTTP API: an entry for every change a request attempts, and for every
refused attempt (401, 403) on any route.

:class:`AuditMiddleware` opens the request's actor (``zapgate.audit.actor``, filled in by
admission) and, when the answer needs an entry, holds the answer back until the entry is
committed, so a change its client saw answered is already in the log. The entry names the route
(``action``: the method and path template, e.g. ``POST /api/v1/sessions/{session}/start``), what
it acted on (``target``: the path's values, e.g. ``sessions/main``, or the created resource:
``keys/key_...``), the caller, the client's address and the result.

Not recorded: reads that were allowed; successful sends and simulated inbound messages (the
message log has them, with their actor, and an entry each would double the writes of the
hottest path), and their failures other than 401 and 403; requests answered before the router
other than 401 and 403 (rate limits, the body limit). The send hot path answers before ASGI, so
it calls :meth:`AuditTrail.record` for its own 401 and 403.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapgate.audit import actor as actors
from zapgate.audit.actor import ActorRef
from zapgate.audit.model import Result
from zapgate.audit.service import AuditService
from zapgate.errors import AppError
from zapgate.http.admission import client_address
from zapgate.http.fastlane import ROUTES
from zapgate.http.ratelimit import ADMITTED
from zapgate.http.templates import PathTemplates, Route

log = logging.getLogger(__name__)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSED = frozenset({401, 403})
SENDS = frozenset({*ROUTES.values(), "/api/v1/cloudapi/{tenant}/{session}/webhook"})
"""Routes whose successes the message log records instead (sends, and Meta's callbacks: what
they carry is stored as messages and statuses; a refused one is still an audit entry)."""
API_PREFIX = "/api/v1/"
BODY_KEPT = 64 * 1024
"""Largest answer held back whole (its error code, or the id it created, is read from it)."""
REASON_MAX = 200


class AuditTrail:
    """Decides which answers need an entry, and records them."""

    def __init__(self, audit: AuditService, paths: Callable[[], Iterable[str]] = tuple) -> None:
        self._audit = audit
        self._templates = PathTemplates(paths)

    @staticmethod
    def wanted(scope: Scope, status: int) -> bool:
        """Whether an answer with ``status`` to the request of ``scope`` needs an entry."""
        if status in REFUSED:
            return True
        if scope["method"] not in MUTATING:
            return False
        template = getattr(scope.get("route"), "path", None)
        return template is not None and template not in SENDS  # None: not routed

    async def record(
        self,
        scope: Scope,
        status: int,
        ref: ActorRef | None,
        detail: dict[str, Any] | None = None,
        created: str | None = None,
        route: Route | None = None,
    ) -> None:
        """Record the answer ``status`` to the request of ``scope`` (by the caller of ``ref``)
        in its tenant; an unknown caller's in the operator's, within the cap. ``created``:
        the id of what it created; ``route``: when the router did not see the request."""
        template, params = route or self._route(scope)
        action = f"{scope['method']} {template}"
        target = _target(template, params, created)
        address = client_address(scope)
        if ref is None or ref.tenant is None:
            await self._audit.record_unknown(action, target, status, address, detail)
            return
        result = Result.of_status(status)
        tenants = [ref.tenant]
        acted_on = params.get("tenant")  # operator routes act on the tenant of their path
        deleted = scope["method"] == "DELETE" and target == f"tenants/{acted_on}"
        if acted_on and acted_on != ref.tenant and result is Result.OK and not deleted:
            tenants.append(acted_on)  # (a deleted tenant's log goes with it)
        for tenant in tenants:
            await self._audit.record(
                tenant,
                ref.actor,
                action,
                target,
                result,
                status=status,
                address=address,
                detail=detail,
            )

    async def refusal(
        self, scope: Scope, ref: ActorRef | None, error: AppError, route: Route
    ) -> None:
        """Record ``error`` if it is a 401 or 403 answered outside ASGI (the send hot path),
        to ``route``; never raises."""
        if error.status not in REFUSED:
            return
        detail = {"error": error.code}
        if isinstance(error.detail, str):
            detail["reason"] = error.detail[:REASON_MAX]
        try:
            await self.record(scope, error.status, ref, detail, route=route)
        except Exception:
            log.exception("could not record the audit entry of %s", scope["path"])

    def _route(self, scope: Scope) -> Route:
        route = scope.get("route")
        if route is not None and hasattr(route, "path"):
            return route.path, {k: str(v) for k, v in scope.get("path_params", {}).items()}
        return self._templates.match(scope["path"]) or (scope["path"], {})


class AuditMiddleware:
    """Opens each request's actor; records the answers :meth:`AuditTrail.wanted` names before
    releasing them."""

    def __init__(self, app: ASGIApp, trail: AuditTrail) -> None:
        self.app = app
        self._trail = trail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with actors.acting() as ref:
            admitted = scope.get(ADMITTED)
            if admitted is not None:  # by the send hot path, which handed the request over
                actors.identify(admitted.principal.key_id, admitted.principal.tenant)
            answer = _HeldAnswer(self._trail, scope, ref, send)
            await self.app(scope, receive, answer.send)
            await answer.release()


class _HeldAnswer:
    """The app's answer, passed on as it comes unless it needs an entry: then held until its
    body is complete (or past ``BODY_KEPT``), recorded, and released."""

    def __init__(self, trail: AuditTrail, scope: Scope, ref: ActorRef, send: Send) -> None:
        self._trail = trail
        self._scope = scope
        self._ref = ref
        self._send = send
        self._held: list[Message] = []
        self._size = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if self._trail.wanted(self._scope, message["status"]):
                self._held.append(message)
                return
        elif self._held and message["type"] == "http.response.body":
            self._held.append(message)
            self._size += len(message.get("body", b""))
            if message.get("more_body", False) and self._size <= BODY_KEPT:
                return
            await self.release()
            return
        await self._send(message)

    async def release(self) -> None:
        """Record the held answer, then pass it on (nothing when nothing is held)."""
        if not self._held:
            return
        held, self._held = self._held, []
        start = held[0]
        complete = len(held) > 1 and not held[-1].get("more_body", False)
        body = b"".join(message.get("body", b"") for message in held[1:]) if complete else b""
        status: int = start["status"]
        try:
            await self._trail.record(
                self._scope, status, self._ref, _detail(start, body), _created(status, body)
            )
        except Exception:
            log.exception("could not record the audit entry of %s", self._scope["path"])
        for message in held:
            await self._send(message)


def _target(template: str, params: dict[str, str], created: str | None) -> str | None:
    """``sessions/main`` for ``/api/v1/sessions/{session}/start``: the path after the API
    prefix up to its last parameter; a creation's path and the id it created."""
    parts = template.removeprefix(API_PREFIX).strip("/").split("/")
    if not parts[0]:
        return None
    named = [params.get(part[1:-1], part) if part.startswith("{") else part for part in parts]
    if created is not None:
        return "/".join([*named, created])
    last = max((i for i, part in enumerate(parts) if part.startswith("{")), default=0)
    return "/".join(named[: last + 1])


def _created(status: int, body: bytes) -> str | None:
    """The id (or name) of what a 201 answer created."""
    if status != 201 or not body:
        return None
    answer = _json(body)
    found = answer.get("id") or answer.get("name")
    return found if isinstance(found, str) else None


def _detail(start: Message, body: bytes) -> dict[str, Any] | None:
    """An error answer's code and reason; whether the answer replays an Idempotency-Key's."""
    detail: dict[str, Any] = {}
    if start["status"] >= 400 and body:
        answer = _json(body)
        if isinstance(answer.get("error"), str):
            detail["error"] = answer["error"][:REASON_MAX]
        if isinstance(answer.get("detail"), str):
            detail["reason"] = answer["detail"][:REASON_MAX]
    if (b"idempotent-replayed", b"true") in start.get("headers", ()):
        detail["replayed"] = True
    return detail or None


def _json(body: bytes) -> dict[str, Any]:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return answer if isinstance(answer, dict) else {}
