"""A server span per HTTP answer, when tracing is on (``ZAPGATE_OTEL_ENDPOINT``, see
:mod:`zapgate.tracing`); the app has no such layer otherwise.

It sits just inside :class:`~zapgate.http.access.Observed`, which has set the request id, and
outside everything else, so refusals (401, 413, 429) and the fast lanes' answers are traced too.
A caller's W3C ``traceparent`` is continued. The span is named by the route template (never the
concrete path) and carries the method, template, status, request id, tenant and key id: never
the key, the path or the query string (a token may travel there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import context
from opentelemetry.trace import SpanKind, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapgate.http.ratelimit import ADMITTED
from zapgate.http.templates import UNMATCHED, PathTemplates, template_of
from zapgate.requests import REQUEST_ID

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from zapgate.tracing.otel import Tracing

W3C = TraceContextTextMapPropagator()
_CARRIED = (b"traceparent", b"tracestate")


class Traced:
    """Each HTTP request served by ``app`` in a server span of ``tracing``'s tracer."""

    def __init__(self, app: ASGIApp, tracing: Tracing, templates: PathTemplates) -> None:
        self.app = app
        self._tracer = tracing.tracer
        self._templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        parent = W3C.extract(_carrier(scope))
        span = self._tracer.start_span(
            method, parent, SpanKind.SERVER, {"http.request.method": method}
        )
        token = context.attach(set_span_in_context(span, parent))
        code = 500

        async def answering(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, answering)
        except BaseException as error:
            span.set_attribute("error.type", type(error).__qualname__)
            raise
        finally:
            context.detach(token)
            self._ended(span, scope, code)

    def _ended(self, span: Span, scope: Scope, code: int) -> None:
        route = template_of(scope, self._templates)
        if route != UNMATCHED:
            span.update_name(f"{scope['method']} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", code)
        span.set_attribute("zapgate.request_id", REQUEST_ID.get() or "")
        admitted = scope.get(ADMITTED)
        if admitted is not None:
            span.set_attribute("zapgate.tenant", admitted.principal.tenant)
            span.set_attribute("zapgate.key_id", admitted.principal.key_id)
        if code >= 500:
            span.set_status(StatusCode.ERROR)
        span.end()


def _carrier(scope: Scope) -> dict[str, str]:
    """The request's trace context headers (a W3C carrier)."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _CARRIED
    }
