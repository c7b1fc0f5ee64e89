"""OpenTelemetry traces: with ``ZAPGATE_OTEL_ENDPOINT`` a real server exports a server span per
request to an OTLP/HTTP collector (here a fake one decoding the protobuf), named by the route
template, continuing the caller's ``traceparent``, and never carrying the key; without it,
nothing of the SDK is even imported."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from pydantic import ValidationError

from tests.conftest import ADMIN_KEY, RunningServer, free_port, make_settings
from tests.test_messages_api import wait_working
from zapgate.config import Settings
from zapgate.services import build_services

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
QUERY_SECRET = "query-secret-0123456789"


class Collector:
    """A fake OTLP/HTTP collector: keeps every span POSTed to ``/v1/traces``."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.services: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}/v1/traces"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                collector.take(request, self.path)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def take(self, request: ExportTraceServiceRequest, path: str) -> None:
        assert path == "/v1/traces"
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            self.services.add(str(resource.get("service.name")))
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def attributes(pairs: Any) -> dict[str, object]:
    """OTLP key-values as a dict."""
    return {pair.key: getattr(pair.value, pair.value.WhichOneof("value")) for pair in pairs}


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def server_settings(tmp_path: Path, collector: Collector) -> Settings:
    return make_settings(tmp_path, otel_endpoint=collector.url)


async def spans_named(
    server: RunningServer, collector: Collector, names: set[tuple[str, int]]
) -> dict[tuple[str, int], Span]:
    """The spans of these names and status codes, once all are exported (a span ends just
    after its answer is sent)."""
    assert server.services.tracing is not None
    async with asyncio.timeout(10):
        while True:
            await server.services.tracing.flush()
            found = {(span.name, status_of(span)): span for span in collector.spans}
            if names <= found.keys():
                return found
            await asyncio.sleep(0.02)


def status_of(span: Span) -> int:
    return int(str(attributes(span.attributes)["http.response.status_code"]))


async def test_each_request_is_a_server_span_named_by_its_route_template(
    server: RunningServer, api: httpx.AsyncClient, collector: Collector
) -> None:
    await wait_working(server)
    read = await api.get(
        "/api/v1/sessions/default",
        headers={"traceparent": TRACEPARENT, "X-Request-Id": "trace-test-1"},
    )
    assert read.status_code == 200
    sent = await api.post(
        "/api/v1/sessions/default/messages", json={"to": "5511999999999", "text": "hi"}
    )
    assert sent.status_code in (201, 202), sent.text
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        refused = await anonymous.get("/api/v1/sessions/default")
        assert refused.status_code == 401
    missing = await api.get(f"/no/such/page?access_token={QUERY_SECRET}")
    assert missing.status_code == 404

    spans = await spans_named(
        server,
        collector,
        {
            ("GET /api/v1/sessions/{session}", 200),
            ("POST /api/v1/sessions/{session}/messages", sent.status_code),
            ("GET /api/v1/sessions/{session}", 401),
            ("GET", 404),
        },
    )
    assert collector.services == {"zapgate"}

    read_span = spans["GET /api/v1/sessions/{session}", 200]
    assert read_span.kind == Span.SpanKind.SPAN_KIND_SERVER
    assert read_span.trace_id.hex() == TRACE_ID  # the caller's trace, continued
    assert read_span.parent_span_id.hex() == PARENT_ID
    read_attributes = attributes(read_span.attributes)
    key_id = read_attributes.pop("zapgate.key_id")
    assert str(key_id).startswith("key_")  # the key's id, never the key
    assert read_attributes == {
        "http.request.method": "GET",
        "http.route": "/api/v1/sessions/{session}",
        "http.response.status_code": 200,
        "zapgate.request_id": "trace-test-1",
        "zapgate.tenant": "default",
    }

    send_span = spans["POST /api/v1/sessions/{session}/messages", sent.status_code]
    assert send_span.trace_id.hex() != TRACE_ID  # no traceparent: a trace of its own
    assert not send_span.parent_span_id
    assert server.hot is not None
    assert server.hot.served == 0  # traced: no send bypasses the ASGI app

    refused_span = attributes(spans["GET /api/v1/sessions/{session}", 401].attributes)
    assert "zapgate.key_id" not in refused_span  # refused before any key was admitted

    assert "http.route" not in attributes(spans["GET", 404].attributes)  # no route: no template

    for span in collector.spans:
        for value in attributes(span.attributes).values():
            assert ADMIN_KEY not in str(value)
            assert QUERY_SECRET not in str(value)
            assert "/default" not in str(value)  # templates, never concrete paths


def test_with_no_endpoint_no_exporter_is_built_or_imported(tmp_path: Path) -> None:
    assert build_services(make_settings(tmp_path)).tracing is None
    program = f"""
import sys
from zapgate.app import create_asgi
from zapgate.config import Settings
from zapgate.http.hotpath import HotPath
from zapgate.services import build_services

services = build_services(Settings(_env_file=None, data_dir={str(tmp_path / "off")!r}))
create_asgi(services)
HotPath(services)
assert services.tracing is None
loaded = sorted(
    name for name in sys.modules
    if name.startswith(("opentelemetry.sdk.trace", "opentelemetry.exporter", "zapgate.tracing.otel",
                        "zapgate.http.traced"))
)
assert not loaded, loaded
"""  # (redis-py imports opentelemetry.sdk.metrics when installed; the trace SDK stays out)
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("endpoint", ["collector:4318/v1/traces", "ftp://collector/v1/traces"])
def test_an_endpoint_that_is_not_an_http_url_is_refused(tmp_path: Path, endpoint: str) -> None:
    with pytest.raises(ValidationError, match="otel_endpoint"):
        make_settings(tmp_path, otel_endpoint=endpoint)


def test_an_empty_endpoint_means_off(tmp_path: Path) -> None:
    assert build_services(make_settings(tmp_path, otel_endpoint="")).tracing is None
