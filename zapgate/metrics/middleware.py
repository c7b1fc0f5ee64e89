"""Counts every HTTP answer by route template, method and status, and times it."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapgate.http.templates import PathTemplates, template_of
from zapgate.metrics.registry import Metrics


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
            route = template_of(scope, self._templates)
            self._metrics.request(route, scope["method"], code, time.perf_counter() - began)
