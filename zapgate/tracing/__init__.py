"""OpenTelemetry traces, exported over OTLP/HTTP when ``ZAPGATE_OTEL_ENDPOINT`` is set.

Off (the default) it costs nothing: this module imports no OpenTelemetry SDK, no exporter is
built, no middleware is added and the send hot path stays on. :mod:`zapgate.tracing.otel`, which
does import them, is loaded only by :func:`tracing_for` with an endpoint set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zapgate.config import Settings

if TYPE_CHECKING:
    from zapgate.tracing.otel import Tracing


def tracing_for(settings: Settings) -> Tracing | None:
    """The exporter ``settings`` ask for, or None (``ZAPGATE_OTEL_ENDPOINT`` unset)."""
    if not settings.otel_endpoint:
        return None
    from zapgate.tracing.otel import Tracing  # only now: nothing of it is loaded when off

    return Tracing(settings.otel_endpoint, settings.node_name)
