"""Counts every HTTP answer by route template, method and status, and times it."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapgate.http.templates import PathTemplates
from zapgate.metrics.registry import UNMATCHED, Metrics


class MetricsMiddleware:
    """Outside everything else, so refusals (401, 413, 429) are counted too."""

    def __init__(self, app: ASGIApp, metrics: Metrics, templates: PathTemplates) -> None:
        self.app = app
        self._metrics = metrics
        self._templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        code = 500

        async def answering(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, answering)
        finally:
            self._metrics.request(
                self._route(scope), scope["method"], code, time.perf_counter() - began
            )

    def _route(self, scope: Scope) -> str:
        """The template the router matched, else the one the path fits (the fast lanes), else
        ``unmatched``: never a concrete path (bounded label values)."""
        template = getattr(scope.get("route"), "path", None)
        if isinstance(template, str):
            return template
        found = self._templates.match(scope["path"])
        return found[0] if found is not None else UNMATCHED
