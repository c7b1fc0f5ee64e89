"""The dispatcher: turns new events into deliveries and sends them, retrying on a schedule.

Planning reads the log after each subscription's cursor and, in one transaction, stores a
delivery per matching event and moves the cursor: an event is never skipped, even across a
crash. Sending keeps order per subscription and session: a session's next delivery waits until
the one before it succeeded or gave up. Sessions are served side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.db.tables import events as events_table
from zapgate.db.tables import webhook_attempts, webhook_deliveries, webhooks
from zapgate.events import repository as event_log
from zapgate.events.bus import EventBus
from zapgate.events.model import Event, EventDraft, EventType
from zapgate.ids import new_id
from zapgate.webhooks import repository, signing
from zapgate.webhooks.client import WebhookClient
from zapgate.webhooks.model import AttemptOutcome, Delivery, DeliveryStatus, Webhook
from zapgate.webhooks.service import delivery_row

log = logging.getLogger(__name__)
PLAN_PAGE = 500
SCAN = 1000
IDLE_SECONDS = 1.0
MAX_DELAY_SECONDS = 86_400.0
USER_AGENT = "zapgate-webhooks/1"


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """When attempts happen: ``schedule[n]`` seconds after the n-th failure (first one: [0])."""

    schedule: tuple[float, ...]
    disable_after: int
    jitter: float = 0.2

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds until the next attempt after ``attempts`` failures, None when out of tries."""
        if attempts >= len(self.schedule):
            return None
        scheduled = self.schedule[attempts] * rng.uniform(1 - self.jitter, 1 + self.jitter)
        return min(max(scheduled, retry_after or 0.0), MAX_DELAY_SECONDS)


class Dispatcher:
    """Plans and sends webhook deliveries for every tenant on this node."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        bus: EventBus,
        client: WebhookClient,
        plan: RetryPlan,
        concurrency: int = 16,
    ) -> None:
        self._database = database
        self._committer = committer
        self._bus = bus
        self._client = client
        self._plan = plan
        self._rng = random.Random()
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self.attempts = 0
        self._attempt_made = asyncio.Event()

    def wake(self) -> None:
        """Say there may be work (new events, a retry, a changed subscription)."""
        self._wake.set()

    async def start(self) -> None:
        """Open the HTTP pool and begin."""
        await self._client.start()
        self._unsubscribe = self._bus.subscribe(lambda _events: self._wake.set())
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        """Stop sending; pending deliveries stay stored for the next start."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._client.close()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook dispatch round failed")
                wait = IDLE_SECONDS
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def run_once(self) -> float:
        """Plan, then send what is due; returns seconds until something is due again."""
        await self.plan()
        subscriptions = await repository.all_active(self._database)
        waits = await asyncio.gather(*(self._serve_safely(webhook) for webhook in subscriptions))
        return min([IDLE_SECONDS, *waits])

    async def _serve_safely(self, webhook: Webhook) -> float:
        """One subscription's round; its failure is logged and does not touch the others."""
        try:
            return await self._serve(webhook)
        except Exception:
            log.exception("webhook %s: dispatch round failed", webhook.id)
            return IDLE_SECONDS

    # planning --------------------------------------------------------------------------------

    async def plan(self) -> int:
        """Store deliveries for events after each subscription's cursor; returns how many."""
        planned = 0
        for webhook in await repository.all_active(self._database):
            planned += await self._plan_one(webhook)
        return planned

    async def _plan_one(self, webhook: Webhook) -> int:
        planned = 0
        cursor = webhook.cursor_seq
        while True:
            page = await event_log.read_after(self._database, webhook.tenant, cursor, PLAN_PAGE)
            if not page:
                return planned
            wanted = [event for event in page if webhook.wants(event.type, event.session)]
            await self._committer.run(_advance(webhook, cursor, page[-1].seq, wanted))
            planned += len(wanted)
            cursor = page[-1].seq
            if len(page) < PLAN_PAGE:
                return planned

    # sending ---------------------------------------------------------------------------------

    async def _serve(self, webhook: Webhook) -> float:
        pending = await repository.pending(self._database, webhook.id, SCAN)
        if not pending:
            return IDLE_SECONDS
        now = now_ms()  # one instant for the round: bodies are loaded for what is due at it
        bodies = await _bodies(
            self._database, [d.event_id for d in pending if d.next_attempt_at <= now]
        )
        by_session: dict[str | None, list[Delivery]] = defaultdict(list)
        for delivery in pending:
            by_session[delivery.session].append(delivery)
        state = _WebhookState(webhook)
        more = len(pending) == SCAN  # a full page: there may be more behind it
        waits = await asyncio.gather(
            *(self._serve_session(state, queue, bodies, now, more) for queue in by_session.values())
        )
        return min(waits)

    async def _serve_session(
        self,
        state: _WebhookState,
        queue: list[Delivery],
        bodies: dict[str, bytes],
        now: int,
        more: bool,
    ) -> float:
        """Send a session's deliveries in order; the attempts are stored as they complete, and
        all of them before this returns (so the next read sees them)."""
        records: list[asyncio.Task[None]] = []
        try:
            for delivery in queue:
                if not state.webhook_active:
                    return IDLE_SECONDS
                wait = (delivery.next_attempt_at - now) / 1000
                if wait > 0:
                    return wait
                body = bodies.get(delivery.event_id)
                if body is None:
                    await self._give_up(delivery, "the event is no longer in the log (retention)")
                    continue
                async with self._limit:
                    outcome = await self._attempt(state.webhook, delivery, body)
                go_on, record = self._judge(state, delivery, outcome)
                records.append(asyncio.create_task(record))
                if not go_on:
                    return IDLE_SECONDS if not state.webhook_active else 0.0
            return 0.0 if more else IDLE_SECONDS
        finally:
            await asyncio.gather(*records)

    async def _attempt(self, webhook: Webhook, delivery: Delivery, body: bytes) -> AttemptOutcome:
        now = now_ms()
        headers = {
            **webhook.headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signing.headers(webhook.signing_secrets(now), delivery.event_id, now // 1000, body),
        }
        return await self._client.post(webhook.url, body, headers)

    async def recorded_beyond(self, count: int) -> None:
        """Return once more than ``count`` attempts are recorded (tests await, never sleep)."""
        while self.attempts <= count:
            self._attempt_made.clear()
            await self._attempt_made.wait()

    def _judge(
        self, state: _WebhookState, delivery: Delivery, outcome: AttemptOutcome
    ) -> tuple[bool, Coroutine[Any, Any, None]]:
        """Whether the session may go on, and the (not yet run) write that records the attempt."""
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        disable: str | None = None
        if outcome.succeeded:
            values["status"] = DeliveryStatus.SUCCEEDED
            state.failures = 0
        elif outcome.status_code == 410:
            values["status"] = DeliveryStatus.FAILED
            disable = "the receiver answered 410 Gone"
        else:
            delay = self._plan.delay(attempts, outcome.retry_after_seconds, self._rng)
            if delay is None:
                values["status"] = DeliveryStatus.FAILED
                state.failures += 1
                if state.failures >= self._plan.disable_after:
                    disable = f"{state.failures} events in a row could not be delivered"
            else:
                values["next_attempt_at"] = now_ms() + int(delay * 1000)
        if disable is not None:
            state.webhook_active = False
        gave_up = values.get("status") == DeliveryStatus.FAILED and disable is None
        job = _store_attempt(state, delivery, outcome, values, disable)
        return outcome.succeeded or gave_up, self._store(job)

    async def _store(self, job: Any) -> None:
        await self._committer.run(job)
        self.attempts += 1
        self._attempt_made.set()

    async def _give_up(self, delivery: Delivery, reason: str) -> None:
        values = {"status": DeliveryStatus.FAILED, "last_error": reason}

        async def job(unit: UnitOfWork) -> None:
            await repository.update_delivery(unit.connection, delivery.id, values)

        await self._committer.run(job)


class _WebhookState:
    """What a sending round learns about a subscription as it goes."""

    def __init__(self, webhook: Webhook) -> None:
        self.webhook = webhook
        self.webhook_active = True
        self.failures = webhook.consecutive_failures


def _advance(webhook: Webhook, cursor: int, last_seq: int, wanted: list[Event]) -> Any:
    async def job(unit: UnitOfWork) -> None:
        moved = await unit.connection.execute(
            sa.update(webhooks)
            .where(webhooks.c.id == webhook.id, webhooks.c.cursor_seq == cursor)
            .values(cursor_seq=last_seq)
        )
        if not moved.rowcount:
            return  # another planner got here first
        now = now_ms()
        for event in wanted:
            unit.insert(
                webhook_deliveries, delivery_row(webhook, event.id, event.seq, event.session, now)
            )

    return job


def _store_attempt(
    state: _WebhookState,
    delivery: Delivery,
    outcome: AttemptOutcome,
    values: dict[str, Any],
    disable: str | None,
) -> Any:
    webhook = state.webhook

    async def job(unit: UnitOfWork) -> None:
        unit.insert(
            webhook_attempts,
            {
                "id": new_id("att"),
                "tenant_id": delivery.tenant,
                "delivery_id": delivery.id,
                "attempted_at": now_ms(),
                "status_code": outcome.status_code,
                "duration_ms": outcome.duration_ms,
                "error": outcome.error,
                "response_excerpt": outcome.excerpt,
            },
        )
        await repository.update_delivery(unit.connection, delivery.id, values)
        counters: dict[str, Any] = {"consecutive_failures": state.failures}
        if disable is not None:
            counters.update(active=False, disabled_reason=disable)
            payload = {"webhook_id": webhook.id, "url": webhook.url, "reason": disable}
            unit.emit(EventDraft(webhook.tenant, None, EventType.WEBHOOK_DISABLED, payload))
        await repository.update(unit.connection, webhook.tenant, webhook.id, counters)

    return job


async def _bodies(database: AsyncEngine, event_ids: list[str]) -> dict[str, bytes]:
    statement = sa.select(events_table).where(events_table.c.id.in_(set(event_ids)))
    async with database.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return {row["id"]: orjson.dumps(Event.from_row(row).envelope()) for row in rows}
