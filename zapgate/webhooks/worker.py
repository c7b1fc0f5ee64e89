"""One subscription's worker: stores its deliveries as events arrive and sends them in order.

A worker sleeps until it is poked: events its subscription wants were committed, its next
retry is due, a lane (below) finished, or the subscription changed. Then it

- **plans**: reads the log after its cursor and, in one transaction, stores a delivery per
  wanted event and moves the cursor, so an event is never skipped, even across a crash. At
  most one pass per ``PLAN_INTERVAL`` (events committed meanwhile share it), and never more
  than ``PLAN_AHEAD`` deliveries ahead of those in flight: a slow receiver's events wait in
  the log and are planned as its backlog drains, not at every commit of its tenant;
- **dispatches**: reads the pending deliveries and starts a *lane* per session whose oldest
  delivery is due, at most ``Concurrency.per_subscription`` at once. A lane sends its session's
  deliveries one after the other and stops at the first that must wait for a retry, so a
  session's next delivery waits until the one before it succeeded or gave up. A bot's lanes
  are its chats (``model.lane_of``), up to ``Context.max_chat_lanes`` at once: one chat waiting
  for a slow answer holds up no other.

Every HTTP request holds a slot of its tenant and one of the dispatcher (``slot``), so a slow
or dead receiver costs its own subscription and never more than its tenant's share.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.committer import Committer, Job, UnitOfWork
from zapgate.events.model import Event, EventDraft, EventType
from zapgate.webhooks import repository
from zapgate.webhooks.model import (
    CHAT_LANES,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    Kind,
    Webhook,
    lane_of,
)
from zapgate.webhooks.policy import RetryPlan
from zapgate.webhooks.recent import RecentEvents
from zapgate.webhooks.sender import Sender

log = logging.getLogger(__name__)
PLAN_PAGE = 100
SCAN = 100
BODY_CHUNK = 20
"""A lane loads the bodies of its deliveries this many at a time."""
FRESH_MAX = 500
"""Events kept from the bus for the next planning pass (beyond: planning reads the log)."""
BODIES_BYTES = 2 * 1024 * 1024
"""Envelopes of events planned from memory, kept for their first attempt (at most this many
bytes; older ones are read from the log again if still needed)."""
SCAN_PAGES = 4
WAITING_MAX = 500
"""Lanes waiting for a retry remembered (and left out of the scans) at most: the soonest due. A
bot has a lane per chat, so a bot down for long has many; the rest are seen again by a scan."""
CURSOR_LAG = 1000
"""Events skipped in memory (not wanted) before the stored cursor is moved past them."""
PLAN_INTERVAL = 0.02
"""At most one planning pass per this many seconds: events committed meanwhile share it."""
PLAN_AHEAD = 50
"""At most this many deliveries are planned ahead of those being sent: later events stay in the
log, after the cursor, until the backlog drains. A slow receiver's subscription then costs in
proportion to what it can take, not to how much its tenant writes."""
GONE = "the event is no longer in the log (retention)"


@dataclass(frozen=True, slots=True)
class Context:
    """What every worker of a dispatcher shares."""

    database: AsyncEngine
    committer: Committer
    senders: Mapping[str, Sender]
    """The sender of each subscription kind."""
    recent: RecentEvents
    """The tenants' recent events, read from the log once for all their subscriptions."""
    plans: Mapping[str, RetryPlan]
    """The retry plan of each subscription kind."""
    rng: random.Random
    max_lanes: int
    """Lanes of one subscription at once (sessions)."""
    recorded: Callable[[], None]
    """Called after each attempt is stored."""
    notify: Callable[[], None]
    """Called when the worker may have come to rest (``Dispatcher.until_quiet``)."""
    judged: Callable[[str, str, float | None], None] = lambda _kind, _result, _lag: None
    """Told of each attempt's subscription kind, result (succeeded, retrying, failed) and,
    delivered, the seconds since its event (metrics)."""
    max_chat_lanes: int = 8
    """Lanes of one subscription at once, when its lanes are chats (``CHAT_LANES``): half the
    tenant's slots, so one slow bot leaves room for the tenant's other subscriptions."""


Slot = Callable[[], AbstractAsyncContextManager[None]]


class Worker:
    """Plans and sends the deliveries of one subscription; ``run`` serves until it is off."""

    def __init__(self, context: Context, tenant: str, webhook_id: str, slot: Slot) -> None:
        self.tenant = tenant
        self.webhook_id = webhook_id
        self._context = context
        self._slot = slot
        self._signal = asyncio.Event()
        self._lanes: dict[str | None, asyncio.Task[None]] = {}  # by lane key (Delivery.lane_key)
        self._waiting: dict[str | None, int] = {}  # lanes whose oldest delivery is not due
        # (until when): left out of the next scans, so sessions behind them are seen
        self._webhook: Webhook | None = None
        self._stored_cursor = -1
        self._cursor = -1
        self._failures = 0
        self._stored_failures = 0
        self._active = True
        self._due_at: int | None = None
        self._reload = self._plan = self._scan = True
        self._planning = self._resting = False
        self._fresh: list[Event] = []  # committed events right after the cursor, from the bus
        self._kept = _KeptBodies()  # envelopes of events planned from memory
        self._backlog = 0  # deliveries planned and not yet finished (an estimate, never more)
        self._behind = False  # events arrived while planning was deferred
        self._planned_at = 0.0

    # signals (synchronous: called by the dispatcher) -------------------------------------------

    def prime(self, webhook: Webhook) -> None:
        """Start from this row instead of reading it."""
        self._adopt(webhook)
        self._reload = False

    def changed(self) -> None:
        """The subscription or its deliveries changed: re-read it and its pending deliveries."""
        self._reload = self._plan = self._scan = True
        self._waiting.clear()  # a retried delivery may be due now
        self._poke()

    def events_arrived(self, events: list[Event]) -> None:
        """Committed events of this tenant, in seq order (the bus's batch)."""
        self._keep_fresh(events)
        if self._skippable(events):
            self._cursor = events[-1].seq  # none wanted: step over them without reading the log
            self._fresh.clear()
            return
        if self._deferring:
            self._behind = True  # planned when the backlog drains (a lane ending says so)
            return
        self._plan = True
        self._poke()

    @property
    def _deferring(self) -> bool:
        return self._room() <= 0

    def _keep_fresh(self, events: list[Event]) -> None:
        """Keep the events that follow the cursor without a gap, so planning need not read them
        back from the log (any gap, or too many, and planning reads the log as before)."""
        follows = self._fresh[-1].seq if self._fresh else self._cursor
        if events[0].seq != follows + 1 or len(self._fresh) + len(events) > FRESH_MAX:
            self._fresh.clear()
            return
        self._fresh.extend(events)

    def _skippable(self, events: list[Event]) -> bool:
        """None is wanted and they follow the cursor (so the log holds nothing else between)."""
        webhook = self._webhook
        if webhook is None or self._plan or self._planning or self._reload:
            return False
        if any(webhook.wants(event.type, event.session) for event in events):
            return False
        follows = events[0].seq == self._cursor + 1
        return follows and events[-1].seq - self._stored_cursor < CURSOR_LAG

    @property
    def stale(self) -> bool:
        """Changed since it last read its subscription (a stopping worker must run again)."""
        return self._reload

    @property
    def resting(self) -> bool:
        """Waiting with nothing to do now (a retry may be due later)."""
        behind = self._behind and not self._deferring
        return self._resting and not self._signal.is_set() and not self._lanes and not behind

    def _poke(self) -> None:
        self._signal.set()
        self._context.notify()

    # the loop ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until the subscription is gone or off; raises what went wrong (restart me)."""
        self._plan = self._scan = True
        try:
            while True:
                self._signal.clear()
                if not await self._refresh():
                    return
                self._reap()
                if self._behind and not self._deferring:
                    self._behind, self._plan = False, True
                if self._plan:
                    await self._pause_between_plans()
                    self._plan = False
                    await self._plan_all()
                if self._reload:
                    continue  # changed meanwhile: nothing is sent under the old row
                if self._scan:
                    self._scan = False
                    self._due_at = await self._dispatch()
                if self._scan or (self._behind and not self._deferring):
                    continue  # more to scan, or events wait unplanned and nothing will say so
                await self._rest()
        finally:
            await self._stop_lanes()

    async def _refresh(self) -> bool:
        if self._reload:
            self._reload = False
            found = await repository.get(self._context.database, self.tenant, self.webhook_id)
            if found is None or not found.active:
                return False
            self._adopt(found)
        return self._active

    def _adopt(self, webhook: Webhook) -> None:
        self._webhook = webhook
        self._active = True
        self._failures = self._stored_failures = webhook.consecutive_failures
        if webhook.cursor_seq != self._stored_cursor:  # else keep what was skipped in memory
            self._cursor = self._stored_cursor = webhook.cursor_seq

    def _finished(self) -> None:
        """A planned delivery ended (succeeded or failed for good); with half the window free
        and events waiting, plan more now, so the pending deliveries never run dry meanwhile."""
        self._backlog = max(0, self._backlog - 1)
        if self._behind and self._backlog <= PLAN_AHEAD // 2:
            self._poke()

    def _reap(self) -> None:
        for session, lane in list(self._lanes.items()):
            if lane.done():
                del self._lanes[session]
                lane.result()  # a lane's failure is the worker's: it is logged and restarted

    async def _rest(self) -> None:
        timeout = None if self._due_at is None else max(self._due_at - now_ms(), 0) / 1000
        self._resting = True
        self._context.notify()
        try:
            async with asyncio.timeout(timeout):
                await self._signal.wait()
        except TimeoutError:
            self._scan = True
        finally:
            self._resting = False

    async def _stop_lanes(self) -> None:
        lanes = list(self._lanes.values())
        self._lanes.clear()
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)

    # planning ----------------------------------------------------------------------------------

    async def _pause_between_plans(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._planned_at + PLAN_INTERVAL - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._planned_at = loop.time()

    async def _plan_all(self) -> None:
        """Store deliveries for the events after the cursor, a page per transaction."""
        self._planning = True
        try:
            while await self._plan_page():
                pass
        finally:
            self._planning = False

    async def _plan_page(self) -> bool:
        webhook = self._webhook
        assert webhook is not None
        room = self._room()
        if room <= 0:
            self._behind = True  # planned as the backlog drains
            return False
        page = self._from_memory() or await self._context.recent.read_after(
            self.tenant, self._cursor, PLAN_PAGE
        )
        if not page:
            return False
        wanted = [event for event in page if webhook.wants(event.type, event.session)]
        full = len(page) == PLAN_PAGE
        if len(wanted) > room:  # stop just after the last event there is room for
            wanted = wanted[:room]
            page = [event for event in page if event.seq <= wanted[-1].seq]
            self._behind, full = True, False
        last = page[-1].seq
        if wanted or last - self._stored_cursor >= CURSOR_LAG:
            job = _advance(webhook, self._stored_cursor, last, wanted)
            if not await self._context.committer.run(job, background=self.tenant):
                self.changed()  # the stored cursor is not what this worker thought: re-read it
                return False
            self._stored_cursor = last
            self._backlog += len(wanted)
        self._cursor = last
        kind = webhook.kind
        lanes = {e.session if (lane := lane_of(kind, e)) is None else lane for e in wanted}
        if any(lane not in self._lanes and lane not in self._waiting for lane in lanes):
            self._scan = True
        return full

    def _from_memory(self) -> list[Event]:
        """The next page of events after the cursor, when the bus already handed them over."""
        fresh = self._fresh
        if not fresh or fresh[0].seq != self._cursor + 1:
            fresh.clear()
            return []
        page = fresh[:PLAN_PAGE]
        del fresh[:PLAN_PAGE]
        webhook = self._webhook
        for event in page:
            if webhook is not None and webhook.wants(event.type, event.session):
                self._kept.keep(event.id, event.envelope_json())
        return page

    def _room(self) -> int:
        """How many more deliveries may be planned now: ``PLAN_AHEAD`` beyond those waiting
        while some are in flight; ``PLAN_AHEAD`` when none is (what waits then waits for a
        retry, and the estimate may be stale: never let it stop planning for good)."""
        return PLAN_AHEAD - self._backlog if self._lanes else PLAN_AHEAD

    # dispatching -------------------------------------------------------------------------------

    async def _dispatch(self) -> int | None:
        """Start a lane per session (or chat) whose oldest delivery is due; returns when one falls
        due."""
        self._reap()  # a lane that just ended no longer holds its session
        now = now_ms()
        self._waiting = {session: due for session, due in self._waiting.items() if due > now}
        skip: set[str | None] = set(self._lanes) | set(self._waiting)
        counting = not skip  # with no lane running, the scan sees every pending delivery
        seen = 0
        due_at: int | None = min(self._waiting.values(), default=None)
        known = len(self._waiting)
        page: list[Delivery] = []
        max_lanes = self._max_lanes()
        for _ in range(SCAN_PAGES):
            page = await repository.pending(
                self._context.database, self.tenant, self.webhook_id, SCAN, skip
            )
            seen += len(page)
            for lane, queue in _by_lane(page):
                skip.add(lane)
                head_at = queue[0].next_attempt_at
                if head_at > now:
                    self._waiting[lane] = head_at
                    due_at = head_at if due_at is None else min(due_at, head_at)
                elif len(self._lanes) < max_lanes:
                    self._start_lane(lane, queue)
            if len(page) < SCAN:
                break
        # Lanes beyond the scanned pages are seen at the next scan: a lane ending, a timer or
        # new deliveries for a lane not seen here (see _plan_page) starts one; and when this
        # pass found lanes that must wait, at once (they are left out of it).
        # Past WAITING_MAX the soonest are kept (the skip list stays bounded) and no scan is
        # forced: the others are seen by the next scan a timer or a lane ending brings.
        capped = len(self._waiting) > WAITING_MAX
        if capped:
            soonest = sorted(self._waiting.items(), key=lambda item: item[1])[:WAITING_MAX]
            self._waiting = dict(soonest)
        beyond = len(page) == SCAN
        grew = len(self._waiting) > known
        if beyond and grew and not capped and len(self._lanes) < max_lanes:
            self._scan = True
        if counting:
            self._backlog = seen
        return due_at

    def _max_lanes(self) -> int:
        webhook = self._webhook
        chats = webhook is not None and webhook.kind in CHAT_LANES
        return self._context.max_chat_lanes if chats else self._context.max_lanes

    def _start_lane(self, lane_key: str | None, queue: list[Delivery]) -> None:
        if self._reload:  # changed while scanning: the next scan, after re-reading, starts it
            self._scan = True
            return
        lane = asyncio.create_task(self._lane(queue), name=f"webhook-{self.webhook_id}-lane")
        lane.add_done_callback(lambda _lane: self._lane_done())
        self._lanes[lane_key] = lane

    def _lane_done(self) -> None:
        self._scan = True
        self._poke()

    async def _lane(self, queue: list[Delivery]) -> None:
        """Send a lane's deliveries in order; every attempt is stored before this returns."""
        records: list[asyncio.Task[None]] = []
        bodies: dict[str, bytes] = {}
        try:
            for index, delivery in enumerate(queue):
                if not self._active or self._reload or delivery.next_attempt_at > now_ms():
                    return  # off, changed (re-read first; the rest stays pending) or not due
                if index % BODY_CHUNK == 0:  # a slow receiver needs few: load them as it goes
                    bodies = await self._bodies(queue[index : index + BODY_CHUNK])
                body = bodies.get(delivery.event_id)
                if body is None:
                    self._finished()
                    records.append(self._record(_give_up(self.tenant, delivery)))
                    continue
                async with self._slot():
                    outcome = await self._attempt(delivery, body)
                go_on, job = self._judge(delivery, outcome)
                records.append(self._record(job))
                if not go_on:
                    return
        finally:
            # shielded: a lane cancelled mid-request still stores the attempts it made
            await asyncio.shield(asyncio.gather(*records))

    async def _bodies(self, queue: list[Delivery]) -> dict[str, bytes]:
        bodies = self._kept.take(d.event_id for d in queue)
        missing = {d.event_id for d in queue} - bodies.keys()
        if missing:
            found = await self._context.recent.by_ids(self.tenant, missing)
            bodies.update({event.id: event.envelope_json() for event in found})
        return bodies

    async def _attempt(self, delivery: Delivery, body: bytes) -> AttemptOutcome:
        webhook = self._webhook
        assert webhook is not None
        sender = self._context.senders.get(webhook.kind)
        if sender is None:  # a kind this node was not built with: kept for a node that is
            return AttemptOutcome(None, 0, f"this server cannot deliver to {webhook.kind}", None)
        return await sender.send(webhook, delivery, body)

    def _judge(self, delivery: Delivery, outcome: AttemptOutcome) -> tuple[bool, Job[None]]:
        """Whether the session may go on, and the write that records the attempt."""
        webhook = self._webhook
        assert webhook is not None
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        disable: str | None = None
        if outcome.succeeded:
            values["status"] = DeliveryStatus.SUCCEEDED
            self._failures = 0
        elif outcome.status_code == 410 and webhook.kind == Kind.WEBHOOK:
            values["status"] = DeliveryStatus.FAILED
            disable = "the receiver answered 410 Gone"
        elif outcome.final:
            values["status"] = DeliveryStatus.FAILED
        else:
            plan = self._context.plans.get(webhook.kind) or self._context.plans[Kind.WEBHOOK]
            rng = self._context.rng
            delay = plan.delay(attempts, outcome.retry_after_seconds, rng)
            if delay is None:
                values["status"] = DeliveryStatus.FAILED
                self._failures += 1
                if outcome.refused:
                    disable = outcome.error or "the target refused zapgate's credentials"
                elif self._failures >= plan.disable_after:
                    disable = f"{self._failures} events in a row could not be delivered"
            else:
                values["next_attempt_at"] = now_ms() + int(delay * 1000)
        if "status" in values:  # it ended: succeeded, or failed for good
            self._finished()
        if disable is not None:
            self._active = False
        gave_up = values.get("status") == DeliveryStatus.FAILED and disable is None
        result = "succeeded" if outcome.succeeded else values.get("status", "retrying")
        lag = (now_ms() - delivery.created_at) / 1000 if outcome.succeeded else None
        self._context.judged(webhook.kind, str(result), lag)
        return outcome.succeeded or gave_up, self._attempt_job(delivery, outcome, values, disable)

    def _attempt_job(
        self,
        delivery: Delivery,
        outcome: AttemptOutcome,
        values: dict[str, Any],
        disable: str | None,
    ) -> Job[None]:
        webhook = self._webhook
        assert webhook is not None
        counters: dict[str, Any] = {}
        if self._failures != self._stored_failures:
            counters["consecutive_failures"] = self._stored_failures = self._failures
        if disable is not None:
            counters.update(active=False, disabled_reason=disable)
        tenant = self.tenant

        async def job(unit: UnitOfWork) -> None:
            repository.add_attempt(unit, tenant, delivery.id, outcome)
            repository.update_delivery(unit, tenant, delivery.id, values)
            if counters:
                await repository.update(unit, tenant, webhook.id, counters)
            if disable is not None:
                unit.emit(disabled_event(webhook, disable))

        return job

    def _record(self, job: Job[None]) -> asyncio.Task[None]:
        async def store() -> None:
            await self._context.committer.run(job, background=self.tenant)
            self._context.recorded()

        return asyncio.create_task(store())


def disabled_event(subscription: Webhook, reason: str) -> EventDraft:
    """What says a subscription was turned off: ``webhook.disabled``, ``sink.disabled`` or, for
    a session integration, ``integration.disabled``."""
    tenant, kind = subscription.tenant, subscription.kind
    payload: dict[str, Any]
    if kind in Kind.SINKS:
        payload = {"sink_id": subscription.id, "type": kind, "reason": reason}
        return EventDraft(tenant, None, EventType.SINK_DISABLED, payload)
    if kind in Kind.INTEGRATIONS:
        session = subscription.integration_session
        payload = {"integration": kind, "session": session, "reason": reason}
        return EventDraft(tenant, session, EventType.INTEGRATION_DISABLED, payload)
    payload = {"webhook_id": subscription.id, "url": subscription.url, "reason": reason}
    return EventDraft(tenant, None, EventType.WEBHOOK_DISABLED, payload)


class _KeptBodies:
    """Envelopes kept for a first attempt, at most ``BODIES_BYTES`` of them (the oldest go
    first; a lane reads what is gone from the log again)."""

    def __init__(self) -> None:
        self._bodies: dict[str, bytes] = {}
        self._size = 0

    def keep(self, event_id: str, body: bytes) -> None:
        self._bodies[event_id] = body
        self._size += len(body)
        while self._size > BODIES_BYTES:
            self._size -= len(self._bodies.pop(next(iter(self._bodies))))

    def take(self, event_ids: Iterable[str]) -> dict[str, bytes]:
        """The kept envelopes of ``event_ids``, no longer kept."""
        taken = {
            event_id: self._bodies.pop(event_id)
            for event_id in event_ids
            if event_id in self._bodies
        }
        self._size -= sum(len(body) for body in taken.values())
        return taken


def _by_lane(page: list[Delivery]) -> Iterator[tuple[str | None, list[Delivery]]]:
    """Each lane's deliveries (in the page's order), lanes by their oldest delivery."""
    queues: dict[str | None, list[Delivery]] = {}
    for delivery in page:
        queues.setdefault(delivery.lane_key, []).append(delivery)
    yield from queues.items()


def _advance(webhook: Webhook, cursor: int, last: int, wanted: list[Event]) -> Job[bool]:
    """Move the cursor and store the deliveries, in one transaction; False if the cursor moved."""
    tenant, webhook_id = webhook.tenant, webhook.id

    async def job(unit: UnitOfWork) -> bool:
        if not await repository.advance_cursor(unit, tenant, webhook_id, cursor, last):
            return False
        repository.add_deliveries(unit, tenant, webhook_id, wanted, webhook.kind)
        return True

    return job


def _give_up(tenant: str, delivery: Delivery) -> Job[None]:
    values = {"status": DeliveryStatus.FAILED, "last_error": GONE}

    async def job(unit: UnitOfWork) -> None:
        repository.update_delivery(unit, tenant, delivery.id, values)

    return job
