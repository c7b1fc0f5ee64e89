"""What is seen of every answer: each carries ``X-Request-Id`` (the caller's, when it sent a
sane one, else a new one), every log line while it is served names it, it is counted in the
metrics by route template, and with ``ZAPGATE_ACCESS_LOG`` logged as JSON: method, route
template, status, time, the key's id (never the key) and the client's address. The send hot
path, which answers outside the ASGI app, reports its answers through ``observe`` too."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapgate.http.admission import client_address
from zapgate.http.ratelimit import ADMITTED
from zapgate.http.templates import PathTemplates, template_of
from zapgate.metrics.registry import Metrics
from zapgate.requests import REQUEST_ID, from_headers

log = logging.getLogger("zapgate.access")


class Observed:
    """Outermost: the id is set before anything else runs and added to the answer, and the
    answer (refusals included: 401, 413, 429) is counted and logged."""

    def __init__(
        self,
        app: ASGIApp,
        templates: PathTemplates,
        metrics: Metrics | None,
        access_log: bool,
    ) -> None:
        self.app = app
        self._templates = templates
        self._metrics = metrics
        self._log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = from_headers(scope["headers"])
        token = REQUEST_ID.set(rid)
        began = time.perf_counter()
        code = 500
        header = (b"x-request-id", rid.encode())

        async def answering(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        try:
            await self.app(scope, receive, answering)
        finally:
            if self._metrics is not None or self._log:
                route = template_of(scope, self._templates)
                seconds = time.perf_counter() - began
                observe(scope, route, code, seconds, self._metrics, self._log)
            REQUEST_ID.reset(token)


def observe(
    scope: Scope,
    route: str,
    code: int,
    seconds: float,
    metrics: Metrics | None,
    access_log: bool,
) -> None:
    """One answer: counted (``metrics``), and logged when ``access_log``."""
    if metrics is not None:
        metrics.request(route, scope["method"], code, seconds)
    if access_log:
        _logged(scope, route, code, seconds)


def _logged(scope: Scope, route: str, code: int, seconds: float) -> None:
    """One access log line (the key's id, never the key)."""
    admitted = scope.get(ADMITTED)
    key_id = admitted.principal.key_id if admitted is not None else None
    fields = {
        "method": scope["method"],
        "route": route,
        "status": code,
        "ms": round(seconds * 1000, 2),
        "key_id": key_id,
        "client": client_address(scope),
    }
    log.info("%s %s %d", scope["method"], route, code, extra={"fields": fields})
