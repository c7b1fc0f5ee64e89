"""Delivers events to sinks: one broker connection per sink, each event published and confirmed.

A sink's connection opens at its first delivery and is dropped after a failure (the next try
reconnects), when the sink changes (a new URL or names) and after ``IDLE_SECONDS`` unused (a
deleted or paused sink's, closed by a sweeper, never by a send). The broker's address passes the
SSRF guard at every connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from zapgate.sinks import targets
from zapgate.tasks import cancel_and_wait
from zapgate.webhooks import ssrf
from zapgate.webhooks.client import public_reason
from zapgate.webhooks.model import AttemptOutcome, Delivery, Kind, Webhook

if TYPE_CHECKING:
    from zapgate.sinks.brokers import Broker

log = logging.getLogger(__name__)
IDLE_SECONDS = 300.0
SWEEP_SECONDS = 30.0


class BrokerSender:
    """The sender of the three sink kinds (``Dispatcher(senders=...)``)."""

    def __init__(self, allowlist: ssrf.Allowlist, timeout_seconds: float) -> None:
        self._allowlist = allowlist
        self._timeout = timeout_seconds
        self._brokers: dict[str, tuple[int, Broker]] = {}  # sink id: (its updated_at, broker)
        self._used: dict[str, float] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the sweeper (each sink connects at its first delivery)."""
        self._sweeper = asyncio.create_task(self._sweeping(), name="sink-connections-sweeper")

    async def close(self) -> None:
        """Stop the sweeper; close every connection."""
        if self._sweeper is not None:
            await cancel_and_wait(self._sweeper)
            self._sweeper = None
        for sink_id in list(self._brokers):
            self._drop(sink_id)
        await asyncio.gather(*self._closing, return_exceptions=True)

    async def send(self, subscription: Webhook, delivery: Delivery, body: bytes) -> AttemptOutcome:
        """Publish the envelope; the outcome is 'succeeded' once the broker confirmed it."""
        from zapgate.sinks.brokers import BrokerError  # the broker clients load with a sink

        started = time.monotonic()
        try:
            broker = self._broker(subscription)
            self._used[subscription.id] = started
            event_type = orjson.loads(body)["type"]
            target = _target(subscription, delivery.session, str(event_type))
            await broker.publish(target, body, delivery.event_id, _headers(delivery, event_type))
        except BrokerError as error:
            if error.returned:  # it would come back again; the connection is fine
                return AttemptOutcome.timed(started, None, str(error), final=True)
            self._drop(subscription.id)
            return AttemptOutcome.timed(started, None, str(error), refused=error.refused)
        except Exception as error:  # never let one sink's bad data stop the dispatcher
            log.warning("sink %s: publish failed", subscription.id, exc_info=error)
            self._drop(subscription.id)
            return AttemptOutcome.timed(started, None, public_reason(error, self._timeout))
        return AttemptOutcome.timed(started, None, None, "published")

    def _broker(self, sink: Webhook) -> Broker:
        found = self._brokers.get(sink.id)
        if found is not None and found[0] == sink.updated_at:
            return found[1]
        from zapgate.sinks.brokers import open_broker

        config = dict(sink.config)
        if sink.kind == Kind.NATS:
            config["subjects"] = targets.nats_subjects(config["subject"])
        broker = open_broker(sink.kind, config, self._guard, self._timeout)
        if found is not None:  # the sink changed: its old connection goes
            self._close_later(found[1])
        self._brokers[sink.id] = (sink.updated_at, broker)
        return broker

    async def _guard(self, host: str, port: int) -> str:
        from zapgate.sinks.brokers import BrokerError

        try:
            return (await ssrf.resolve_checked(host, port, self._allowlist))[0]
        except ssrf.UnsafeAddress as error:
            log.warning("sink broker refused: %s", error)
            raise BrokerError(f"refused: {error.public}") from None
        except ssrf.UnsafeUrl as error:
            raise BrokerError(f"refused: {error}") from None
        except OSError as error:
            raise BrokerError(public_reason(error, self._timeout)) from None

    async def _sweeping(self) -> None:
        """Every ``SWEEP_SECONDS``, close the connections unused for ``IDLE_SECONDS`` (a deleted
        or paused sink's): apart from the sends, which never wait for a close."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            for sink_id, used in list(self._used.items()):
                if now - used > IDLE_SECONDS:
                    self._drop(sink_id)

    def _drop(self, sink_id: str) -> None:
        self._used.pop(sink_id, None)
        found = self._brokers.pop(sink_id, None)
        if found is not None:
            self._close_later(found[1])

    def _close_later(self, broker: Broker) -> None:
        """Close in the background (each close is bounded by the broker's timeout)."""
        task = asyncio.create_task(_close(broker))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _close(broker: Broker) -> None:
    try:
        await broker.close()
    except Exception:
        log.debug("closing a sink's broker connection failed", exc_info=True)


def _target(sink: Webhook, session: str | None, event_type: str) -> str:
    template = sink.config[{"rabbitmq": "routing_key", "nats": "subject"}.get(sink.kind, "stream")]
    if sink.kind == Kind.NATS and session is not None:
        session = session.replace(".", "_")  # a dot would cut a subject token in two
    return targets.render(template, sink.tenant, session, event_type)


def _headers(delivery: Delivery, event_type: Any) -> dict[str, str]:
    headers = {
        "zapgate-tenant": delivery.tenant,
        "zapgate-type": str(event_type),
        "zapgate-seq": str(delivery.event_seq),
        "zapgate-session": delivery.session or "",
    }
    if delivery.request_id is not None:
        headers["zapgate-request-id"] = delivery.request_id
    return headers
