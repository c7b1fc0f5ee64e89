"""The tracer provider of one process: spans are batched, and sent by a background thread to an
OTLP/HTTP collector (protobuf). The standard ``OTEL_*`` variables still tune it: headers
(``OTEL_EXPORTER_OTLP_TRACES_HEADERS``), sampling (``OTEL_TRACES_SAMPLER``, by default the
caller's decision, else every trace), batching (``OTEL_BSP_*``), ``OTEL_SERVICE_NAME``.

The provider is zapgate's own, not the global one: FastAPI's built-in telemetry, which follows
the global provider, stays off (it would add a second server span per request).
"""

from __future__ import annotations

import asyncio
import os

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import (
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    SERVICE_VERSION,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer

from zapgate import __version__


class Tracing:
    """Spans made with ``tracer`` are exported to ``endpoint``; ``shutdown`` sends the rest."""

    def __init__(self, endpoint: str, node: str) -> None:
        resource = Resource.create(
            {
                SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or "zapgate",
                SERVICE_VERSION: __version__,
                SERVICE_INSTANCE_ID: node,
            }
        )
        self._provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self.tracer: Tracer = self._provider.get_tracer("zapgate", __version__)

    async def flush(self) -> bool:
        """Export the spans ended so far (in a thread: the export is a blocking HTTP call)."""
        return await asyncio.to_thread(self._provider.force_flush)

    async def shutdown(self) -> None:
        """Export what is left and stop the exporter's thread (at server stop)."""
        await asyncio.to_thread(self._provider.shutdown)
