"""``RateLimit``/``RateLimit-Policy`` headers on every response to a rate-limited key."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapgate.limits.buckets import Decision

SCOPE_KEY = "zapgate.rate_decision"
ADMITTED = "zapgate.admitted"
"""Scope key of an Admission made before the framework saw the request (the send fast lane)."""


def remember_decision(scope: Scope, decision: Decision | None) -> None:
    """Keep the request's rate decision for the response headers."""
    if decision is not None:
        scope[SCOPE_KEY] = decision


class RateLimitHeaders:
    """Adds the headers of the decision a route's admission left in the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            decision: Decision | None = scope.get(SCOPE_KEY)
            if message["type"] == "http.response.start" and decision is not None:
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.lower().encode(), value.encode())
                    for name, value in decision.headers().items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
