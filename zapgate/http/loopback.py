"""With authentication off, only this machine gets in: loopback ``Host`` values, and no request
from a foreign web page (DNS rebinding and cross-site requests would otherwise get full access)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from zapgate.config import is_loopback_host
from zapgate.http.errors import error_response

SCHEMES = {"ws": "http", "wss": "https"}


class LoopbackGuard:
    """Refuses (403) non-loopback ``Host`` values and foreign ``Origin`` values.

    An origin listed in ``ZAPGATE_CORS_ORIGINS`` is not foreign; Origin-less requests (curl,
    same-origin GETs) pass.
    """

    def __init__(self, app: ASGIApp, listed_origins: list[str]) -> None:
        self.app = app
        self._listed = frozenset(origin.rstrip("/") for origin in listed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = self._refusal(scope)
            if refusal is not None:
                await _refuse(scope, receive, send, refusal)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> str | None:
        host = _header(scope, b"host")
        if host is None or not is_loopback_host(_hostname(host)):
            return "with ZAPGATE_AUTH=off only loopback Host values (localhost, 127.0.0.1, [::1])"
        origin = _header(scope, b"origin")
        if origin is None or origin.rstrip("/") in self._listed:
            return None
        scheme = SCHEMES.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
        if origin != f"{scheme}://{host}":
            return "with ZAPGATE_AUTH=off requests from other web pages are refused"
        return None


def _hostname(host: str) -> str:
    try:
        return urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return ""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": "forbidden"})
        return
    await error_response(403, "forbidden", detail)(scope, receive, send)
