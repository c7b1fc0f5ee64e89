"""Cluster mode: wake-ups between nodes through Redis pub/sub.

Three signals, none of them carrying data the database does not hold, so a lost one costs
latency, never a message or an event:

- a message was queued for a session (its owner's sender wakes; the lease keeper also wakes, at
  each look, the senders of the sessions it holds that have queued messages);
- "look": a session was created, started or stopped (every lease keeper looks now);
- a tenant's log grew to a seq (every node's event tail reads it; it also polls);
- a webhook subscription changed (the node dispatching webhooks re-reads it; it also looks for
  new subscriptions at each renewal of its role).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from zapgate.cluster import pubsub
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CHANNEL = "zapgate:wake"
STOP_SECONDS = 1.0
SEPARATOR = "\x00"  # never in a tenant id or a session name
SEQ = "\x01"  # the first character of a seq signal: "\x01<tenant>\x00<seq>"
WEBHOOK = "\x02"  # the first character of a webhook signal: "\x02<tenant>\x00<webhook id>"
LOOK = "look"
"""The signal that asks every node's lease keeper to look now (a session was created, started
or stopped through some node)."""

Wake = Callable[[str, str], None]
Look = Callable[[], None]
Seq = Callable[[str, int], None]


class WakeSignals:
    """Publishes and receives "a message was queued for this session" between nodes."""

    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self._client = aioredis.from_url(
            url, socket_connect_timeout=5, socket_keepalive=True, health_check_interval=10
        )
        self._channel = channel
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._seqs: dict[str, int] = {}
        self._seqs_task: asyncio.Task[None] | None = None
        self.received = 0
        self.on_seq: Seq | None = None
        """Called with (tenant, seq) for every seq signal of another node."""
        self.on_webhook: Wake | None = None
        """Called with (tenant, webhook id) for every webhook signal."""

    async def start(self, wake: Wake, look: Look) -> None:
        """Call ``wake(tenant, session)`` for every queued-message signal, and ``look()`` for
        every look signal, from now on (subscribed before it returns, so nothing published
        after is missed while Redis stays up)."""
        subscription = await self._subscribe()
        self._task = asyncio.create_task(
            pubsub.listen(
                subscription,
                self._subscribe,
                lambda message: self._handle(message, wake, look),
                "wake-ups",
            ),
            name="zapgate-wake-signals",
        )

    async def stop(self) -> None:
        """Stop listening; signals not yet sent get a second (a stopping node's last "look" is
        what makes the others take its sessions at once), then are dropped (the others' looks
        and polls cover them)."""
        pending = [task for task in (self._seqs_task, *self._sending) if task is not None]
        if pending:
            await asyncio.wait(pending, timeout=STOP_SECONDS)
        await cancel_and_wait(self._task, self._seqs_task, *self._sending)
        self._task = None
        await self._client.aclose()

    def publish(self, tenant: str, session: str) -> None:
        """Tell every node that ``session`` has a queued message (in the background)."""
        self._send(f"{tenant}{SEPARATOR}{session}")

    def publish_webhook(self, tenant: str, webhook_id: str) -> None:
        """Tell every node that a webhook subscription changed (in the background)."""
        self._send(f"{WEBHOOK}{tenant}{SEPARATOR}{webhook_id}")

    def publish_look(self) -> None:
        """Ask every node's lease keeper to look now (in the background)."""
        self._send(LOOK)

    def publish_seq(self, tenant: str, seq: int) -> None:
        """Tell every node that ``tenant``'s log reached ``seq`` (in the background; signals
        that pile up while one is sent are merged: only each tenant's newest goes)."""
        self._seqs[tenant] = max(seq, self._seqs.get(tenant, 0))
        if self._seqs_task is None or self._seqs_task.done():
            self._seqs_task = asyncio.create_task(self._send_seqs())

    async def _send_seqs(self) -> None:
        while self._seqs:
            batch, self._seqs = self._seqs, {}
            try:
                for tenant, seq in batch.items():
                    await self._client.publish(self._channel, f"{SEQ}{tenant}{SEPARATOR}{seq}")
            except (RedisError, OSError) as error:
                log.warning("could not signal new events through Redis: %s", error)
                return  # other nodes poll the log meanwhile

    def _send(self, data: str) -> None:
        task = asyncio.create_task(self._publish(data))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, data: str) -> None:
        try:
            await self._client.publish(self._channel, data)
        except (RedisError, OSError) as error:
            log.warning("could not signal a queued message through Redis: %s", error)

    def _heard_seq(self, text: str) -> None:
        tenant, _, seq = text.partition(SEPARATOR)
        if self.on_seq is not None and tenant and seq.isdigit():
            self.on_seq(tenant, int(seq))

    async def _subscribe(self) -> aioredis.client.PubSub:
        subscription = self._client.pubsub(ignore_subscribe_messages=True)
        await subscription.subscribe(self._channel)
        return subscription

    def _handle(self, message: dict[str, Any], wake: Wake, look: Look) -> None:
        raw = message.get("data")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if text == LOOK:
            look()
        elif text.startswith(SEQ):
            self._heard_seq(text[1:])
        elif text.startswith(WEBHOOK):
            tenant, _, webhook_id = text[1:].partition(SEPARATOR)
            if self.on_webhook is not None and tenant and webhook_id:
                self.on_webhook(tenant, webhook_id)
        else:
            tenant, _, session = text.partition(SEPARATOR)
            if tenant and session:
                self.received += 1
                wake(tenant, session)
