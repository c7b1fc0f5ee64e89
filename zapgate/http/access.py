"""Request ids and the access log: each answer carries ``X-Request-Id`` (the caller's, when it
sent a sane one, else a new one), every log line while it is served names it, and with
``ZAPGATE_ACCESS_LOG`` each answer is logged as JSON: method, route template, status, time,
the key's id (never the key) and the client's address."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapgate.http.admission import client_address
from zapgate.http.ratelimit import ADMITTED
from zapgate.http.templates import PathTemplates, template_of
from zapgate.requests import REQUEST_ID, from_headers

log = logging.getLogger("zapgate.access")


class RequestIds:
    """Outermost: the id is set before anything else runs, and added to the answer."""

    def __init__(self, app: ASGIApp, access_log: bool, templates: PathTemplates) -> None:
        self.app = app
        self._log = access_log
        self._templates = templates

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
            if self._log:
                route = template_of(scope, self._templates)
                logged(scope, route, code, time.perf_counter() - began)
            REQUEST_ID.reset(token)


def logged(scope: Scope, route: str, code: int, seconds: float) -> None:
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
