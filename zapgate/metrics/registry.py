"""The metrics of one node, in a registry of its own (several apps may share a process).

Counters count what *this node* did, so a cluster's totals are the sums over its nodes. The
gauges of shared state (sessions by status, outbox depth) are read from the database at each
scrape, so every node reports the same: aggregate them with ``max``, not ``sum``. Per-session
labels can be turned off (``ZAPGATE_METRICS_PER_SESSION``) to bound the series of a large fleet.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from zapgate.events.model import Event

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELIVERY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_OUT = {"message.queued": "queued", "message.sent": "sent"}


SENT_KEPT = 50_000
"""Sent messages whose send time is remembered for ``sent_to_read`` (the oldest are forgotten)."""


class Metrics:
    """The instruments, and their text for a scrape."""

    def __init__(self, per_session: bool = True) -> None:
        self.per_session = per_session
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "zapgate_http_requests_total",
            "HTTP requests answered, by route template, method and status code",
            ["route", "method", "code"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "zapgate_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.messages = Counter(
            "zapgate_messages_total",
            "Messages by direction (in, out) and the status they reached, committed here",
            ["direction", "status"],
            registry=registry,
        )
        self.events = Counter(
            "zapgate_events_written_total", "Events committed to the log here", registry=registry
        )
        self.commit_batch = Histogram(
            "zapgate_commit_batch_jobs",
            "Writes committed together in one transaction (group commit)",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "zapgate_commit_duration_seconds",
            "Time of one group-commit transaction",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.deliveries = Counter(
            "zapgate_webhook_deliveries_total",
            "Webhook delivery attempts by result (succeeded, retrying, failed)",
            ["result"],
            registry=registry,
        )
        self.delivery_lag = Histogram(
            "zapgate_webhook_delivery_lag_seconds",
            "From an event's commit to its successful delivery",
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self.sink_deliveries = Counter(
            "zapgate_sink_deliveries_total",
            "Deliveries to sinks (rabbitmq, nats, redis) and session integrations (chatwoot, "
            "bot) by kind and result (succeeded, retrying, failed)",
            ["kind", "result"],
            registry=registry,
        )
        self.sink_delivery_lag = Histogram(
            "zapgate_sink_delivery_lag_seconds",
            "From an event's commit to its delivery to a sink or session integration",
            ["kind"],
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._messages: dict[tuple[str, str], Any] = {}
        self.accept_to_sent = Histogram(
            "zapgate_accept_to_sent_seconds",
            "From a message's acceptance to its sent record (pacing and retries included)",
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self.sent_to_read = Histogram(
            "zapgate_sent_to_read_seconds",
            "From a message's sent record to its read receipt (messages sent by this node)",
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self._sent_at: OrderedDict[str, float] = OrderedDict()
        self.session_restarts = Counter(
            "zapgate_session_restarts_total",
            "Engines restarted here (after a failure, or silent too long)",
            ["reason"],
            registry=registry,
        )
        self.bridge_restarts = Counter(
            "zapgate_engine_bridge_restarts_total",
            "Engine bridge processes replaced here: exited (died on its own; its session is "
            "started again) or pairing (started again to ask for a pairing code)",
            ["engine", "reason"],
            registry=registry,
        )
        self.socketio_clients = Gauge(
            "zapgate_socketio_clients", "Socket.IO clients connected here", registry=registry
        )
        self.stream_clients = Gauge(
            "zapgate_stream_clients",
            "Event streams (SSE) and long-polls open here",
            registry=registry,
        )
        labels = ["tenant", "session"] if per_session else ["tenant"]
        self.sessions = Gauge(
            "zapgate_sessions", "Sessions by status (the database's)", ["status"], registry=registry
        )
        self.outbox = Gauge(
            "zapgate_outbox_depth",
            "Messages queued to send (the database's)",
            labels,
            registry=registry,
        )
        self.outbox_oldest = Gauge(
            "zapgate_outbox_oldest_seconds",
            "Age of the oldest queued message (the database's)",
            labels,
            registry=registry,
        )

    def request(self, route: str, method: str, code: int, seconds: float) -> None:
        """One HTTP answer (on every request: the labelled children are looked up once)."""
        key = (route, method, code)
        children = self._http.get(key)
        if children is None:
            children = self._http[key] = (
                self.http_requests.labels(route, method, str(code)),
                self.http_duration.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def committed(self, events: list[Event], jobs: int, seconds: float) -> None:
        """One group commit of this node: its writes and the events they made."""
        self.commit_batch.observe(jobs)
        self.commit_seconds.observe(seconds)
        if not events:
            return
        self.events.inc(len(events))
        counted: dict[tuple[str, str], int] = {}
        for event in events:
            kind = event.type
            if kind == "message.received":
                key = ("in", "received")
            elif kind in _OUT:
                key = ("out", _OUT[kind])
                if kind == "message.sent":
                    self._sent(event)
            elif kind == "message.status":
                status = event.payload.get("status")
                direction = event.payload.get("direction")
                if not isinstance(status, str) or direction not in ("in", "out"):
                    continue
                if status == "read":
                    self._read(event)
                key = (str(direction), status)
            else:
                continue
            counted[key] = counted.get(key, 0) + 1
        for key, count in counted.items():
            child = self._messages.get(key)
            if child is None:
                child = self._messages[key] = self.messages.labels(*key)
            child.inc(count)

    def _sent(self, event: Event) -> None:
        """The time a sent message waited since it was accepted."""
        accepted = event.payload.get("timestamp")
        if isinstance(accepted, str):
            try:
                at = datetime.fromisoformat(accepted).timestamp()
            except ValueError:
                return
            self.accept_to_sent.observe(max(0.0, event.created_at / 1000 - at))
        message_id = event.payload.get("id")
        if isinstance(message_id, str):
            self._sent_at[message_id] = event.created_at / 1000
            if len(self._sent_at) > SENT_KEPT:
                self._sent_at.popitem(last=False)

    def _read(self, event: Event) -> None:
        """The time a message took from sent to read (if this node saw it sent, lately)."""
        sent = self._sent_at.pop(str(event.payload.get("id")), None)
        if sent is not None:
            self.sent_to_read.observe(max(0.0, event.created_at / 1000 - sent))

    def restarted(self, reason: str) -> None:
        """An engine restarted here (``failed`` or ``stale``)."""
        self.session_restarts.labels(reason).inc()

    def bridge_restarted(self, engine: str, reason: str) -> None:
        """An engine's bridge process was replaced here (``exited`` or ``pairing``)."""
        self.bridge_restarts.labels(engine, reason).inc()

    def delivered(self, kind: str, result: str, lag_seconds: float | None) -> None:
        """One delivery attempt (to a webhook, a sink or an integration) and how it ended."""
        if kind == "webhook":
            self.deliveries.labels(result).inc()
            if lag_seconds is not None:
                self.delivery_lag.observe(max(lag_seconds, 0.0))
            return
        self.sink_deliveries.labels(kind, result).inc()
        if lag_seconds is not None:
            self.sink_delivery_lag.labels(kind).observe(max(lag_seconds, 0.0))

    def shared_state(
        self,
        sessions: dict[str, int],
        outboxes: list[tuple[str, str, int, float]],
    ) -> None:
        """The database's figures at a scrape: sessions by status, and each outbox's depth and
        oldest age (``tenant, session, depth, seconds``)."""
        self.sessions.clear()
        for status, count in sessions.items():
            self.sessions.labels(status).set(count)
        self.outbox.clear()
        self.outbox_oldest.clear()
        merged: dict[tuple[str, ...], tuple[int, float]] = {}
        for tenant, session, depth, oldest in outboxes:
            key: tuple[str, ...] = (tenant, session) if self.per_session else (tenant,)
            had_depth, had_oldest = merged.get(key, (0, 0.0))
            merged[key] = (had_depth + depth, max(had_oldest, oldest))
        for key, (depth, oldest) in merged.items():
            self.outbox.labels(*key).set(depth)
            self.outbox_oldest.labels(*key).set(oldest)

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
