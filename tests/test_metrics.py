"""``GET /metrics`` on a real server: refused to anonymous callers and tenants' keys, and after
a known workload its counters and gauges say exactly what happened (route templates, never
concrete paths)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningServer, make_settings
from tests.support.engines import BrokenEngine
from tests.support.events import EventWatcher, message_status, of_type
from tests.support.receiver import Receiver
from tests.support.tenants import tenant_key
from tests.test_messages_api import wait_working
from zapgate.auth.scopes import Scope
from zapgate.config import Settings
from zapgate.engines.registry import EngineSpec
from zapgate.metrics.registry import Metrics

TOKEN = "metrics-token-0123456789"
SEND = "/api/v1/sessions/default/messages"


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        metrics_token=TOKEN,
        webhook_allowlist="127.0.0.1",
        session_restart_limit=2,
        session_restart_base_seconds=0.01,
    )


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(
    scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def scrape(server: RunningServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert "/api/v1/sessions/default/" not in answer.text  # templates only
    return samples(answer.text)


async def test_metrics_refuse_anonymous_callers_and_tenants_keys(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    tenant = await tenant_key(server.services, "acme")
    async with httpx.AsyncClient(base_url=server.url) as client:
        anonymous = await client.get("/metrics")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "unauthorized"
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        other = await client.get("/metrics", headers={"Authorization": f"Bearer {tenant}"})
        assert other.status_code == 403  # another tenant's admin: the figures span tenants
    own = await api.get("/metrics")  # the default tenant's admin: the operator's own
    assert own.status_code == 200
    assert "zapgate_http_requests_total" in own.text
    scraper = await tenant_key(server.services, "default", "scraper", frozenset({Scope.METRICS}))
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {scraper}"}
    ) as client:
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/api/v1/sessions")).status_code == 403  # metrics only
    elsewhere = await tenant_key(server.services, "acme", "scraper", frozenset({Scope.METRICS}))
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {elsewhere}"}
    ) as client:
        assert (await client.get("/metrics")).status_code == 403


async def test_counters_after_a_known_workload(
    server: RunningServer, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await wait_working(server)
    hook = await api.post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["message.received"]}
    )
    assert hook.status_code == 201, hook.text
    async with EventWatcher(server.services.bus) as watcher:
        ids = []
        for n in range(3):
            sent = await api.post(SEND, json={"to": "5511999999999", "text": f"m{n}"})
            assert sent.status_code == 202
            ids.append(sent.json()["id"])
        for message_id in ids:
            await watcher.wait_for(message_status(message_id, "read"))
        for n in range(2):
            inbound = await api.post(
                "/api/v1/sessions/default/simulate/inbound",
                json={"from": "5511988887777", "text": f"in{n}"},
            )
            assert inbound.status_code in (200, 201), inbound.text
        await watcher.wait_for(of_type("message.received"))
    await receiver.wait_until(lambda got: len(got.requests) >= 2)
    created = await api.post("/api/v1/sessions", json={"name": "idle", "start": False})
    assert created.status_code == 201
    for n in range(2):  # queued in a stopped session: its outbox
        assert (
            await api.post(
                "/api/v1/sessions/idle/messages", json={"to": "5511999999999", "text": str(n)}
            )
        ).status_code == 202

    scraped = await scrape(server)
    messages = "zapgate_messages_total"
    assert value(scraped, messages, direction="out", status="queued") == 5
    for status in ("sent", "delivered", "read"):
        assert value(scraped, messages, direction="out", status=status) == 3
    assert value(scraped, messages, direction="in", status="received") == 2
    route = "/api/v1/sessions/{session}/messages"
    requests = "zapgate_http_requests_total"
    assert value(scraped, requests, route=route, method="POST", code="202") == 5
    assert value(scraped, "zapgate_http_request_duration_seconds_count", route=route) == 5
    assert value(scraped, "zapgate_sessions", status="WORKING") == 1
    assert value(scraped, "zapgate_sessions", status="STOPPED") == 1
    assert value(scraped, "zapgate_outbox_depth", tenant="default", session="idle") == 2
    assert value(scraped, "zapgate_outbox_depth", tenant="default", session="default") == 0
    deliveries = "zapgate_webhook_deliveries_total"
    assert value(scraped, deliveries, result="succeeded") == 2
    assert value(scraped, "zapgate_webhook_delivery_lag_seconds_count") == 2
    assert value(scraped, "zapgate_events_written_total") >= 5 + 9 + 2
    assert value(scraped, "zapgate_accept_to_sent_seconds_count") == 3
    assert value(scraped, "zapgate_sent_to_read_seconds_count") == 3  # the three were read
    assert value(scraped, "zapgate_socketio_clients") == 0
    assert value(scraped, "zapgate_stream_clients") == 0


async def test_engine_restarts_are_counted(server: RunningServer, api: httpx.AsyncClient) -> None:
    server.services.sessions.engines.register(
        "broken", EngineSpec(BrokenEngine, BrokenEngine.capabilities)
    )
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post("/api/v1/sessions", json={"name": "fails", "engine": "broken"})
        assert created.status_code == 201, created.text
        await watcher.wait_for(
            lambda e: (
                e.type == "session.status"
                and e.session == "fails"
                and "gave up" in (e.payload.get("reason") or "")
            )
        )
    scraped = await scrape(server)
    assert value(scraped, "zapgate_session_restarts_total", reason="failed") == 2
    assert value(scraped, "zapgate_sessions", status="FAILED") == 1


DOCS = Path(__file__).resolve().parents[1] / "docs" / "grafana"


def test_the_grafana_dashboard_and_alerts_use_only_metrics_that_exist() -> None:
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        names |= {f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_sum", "_count")}
    dashboard = json.loads((DOCS / "zapgate.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    rules = yaml.safe_load((DOCS / "alerts.yml").read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in exprs for name in re.findall(r"\bzapgate_[a-z_]+", expr)}
    assert used, "the dashboard queries zapgate's metrics"
    assert used <= names, sorted(used - names)
    assert len(dashboard["panels"]) >= 10
    assert {"ZapgateSessionFailed", "ZapgateOutboxGrowing", "ZapgateWebhookLag"} <= {
        rule["alert"] for group in rules["groups"] for rule in group["rules"]
    }
