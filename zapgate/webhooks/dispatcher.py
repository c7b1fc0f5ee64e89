"""The dispatcher: one worker per active subscription, woken by events, never polling.

Each active subscription has its own :class:`~zapgate.webhooks.worker.Worker`, so a slow, dead
or timing-out receiver holds back only its own subscription. A worker sleeps until

- the bus publishes committed events of its tenant that it wants (other tenants' events wake
  nobody, and cost no database read),
- its next retry is due (a timer per worker),
- the service says its subscription changed: ``wake(tenant, webhook_id)`` after a create,
  change, delete, retry or replay (a subscription changed by another process is seen at the
  next start).

Guarantees: at-least-once; order per subscription and session (a bot's: per chat); deliveries
are stored in the transaction that moves the subscription's cursor; every attempt is recorded.

Concurrency caps (constructor arguments, :class:`~zapgate.webhooks.policy.Concurrency`):

- ``per_subscription`` (4): sessions of one subscription served at once (a bot's chats: up to
  half of ``per_tenant``, so one slow bot leaves its tenant's other subscriptions room);
- ``per_tenant`` (16): requests in flight for one tenant, all its subscriptions together;
- ``overall`` (64): requests in flight in all.

A worker that fails is logged and restarted after a backoff (1 s doubling to 60 s). ``stop()``
cancels everything within ``STOP_SECONDS``; pending deliveries stay stored for the next start.

In cluster mode one node at a time dispatches (``zapgate.cluster.roles``): it starts and stops
the dispatcher as it gets and loses the role, and ``allowed`` says whether it surely still holds
it; no request leaves without it (a node paused past its lease sends nothing once it wakes).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.db.committer import Committer
from zapgate.events.bus import EventBus
from zapgate.events.model import Event
from zapgate.webhooks import repository
from zapgate.webhooks.client import WebhookClient
from zapgate.webhooks.model import Kind
from zapgate.webhooks.policy import Concurrency, RetryPlan
from zapgate.webhooks.recent import RecentEvents
from zapgate.webhooks.sender import HttpSender, Sender
from zapgate.webhooks.worker import Context, Worker

__all__ = ["Concurrency", "Dispatcher", "RetryPlan"]

log = logging.getLogger(__name__)
RESTART_BASE_SECONDS = 1.0
RESTART_CAP_SECONDS = 60.0
STOP_SECONDS = 10.0


class NotAllowed(Exception):
    """This node may no longer dispatch (cluster mode: another node may hold the role now)."""


class Dispatcher:
    """Runs the workers of every active subscription on this node."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        bus: EventBus,
        client: WebhookClient,
        plan: RetryPlan,
        concurrency: Concurrency | None = None,
        senders: Mapping[str, Sender] | None = None,
        plans: Mapping[str, RetryPlan] | None = None,
    ) -> None:
        """``client`` and ``plan`` serve webhooks; ``senders`` and ``plans`` the other kinds
        (a kind without a plan of its own retries as webhooks do)."""
        self._database = database
        self._bus = bus
        self._senders: dict[str, Sender] = {Kind.WEBHOOK: HttpSender(client), **(senders or {})}
        self._limits = concurrency or Concurrency()
        self._recent = RecentEvents(database)
        every_plan = {kind: plan for kind in self._senders} | dict(plans or {})
        self._context = Context(
            database,
            committer,
            self._senders,
            self._recent,
            every_plan,
            random.Random(),
            self._limits.per_subscription,
            self._recorded,
            self._notify,
            self._judged,
            max_chat_lanes=max(self._limits.per_subscription, self._limits.per_tenant // 2),
        )
        self._overall = asyncio.Semaphore(self._limits.overall)
        self._per_tenant: dict[str, asyncio.Semaphore] = {}
        self._workers: dict[str, dict[str, Worker]] = {}
        self._tasks: dict[Worker, asyncio.Task[None]] = {}
        self._boot: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._running = False
        self._changed = asyncio.Event()
        self.attempts = 0
        self.restarts = 0
        self.allowed: Callable[[], bool] | None = None
        self.judged: Callable[[str, str, float | None], None] | None = None
        """Told of each delivery attempt's result and lag (metrics)."""
        """Cluster mode: whether this node surely still holds the dispatcher's role."""

    # life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the senders, listen to the bus and start a worker per active subscription."""
        for sender in self._distinct_senders():
            await sender.start()
        self._running = True
        self._unsubscribe = self._bus.subscribe(self._on_events)
        self._boot = asyncio.create_task(self._start_all(), name="webhook-dispatcher-boot")

    async def resync(self) -> None:
        """Start a worker for each active subscription that has none (cluster mode: one made
        through another node whose wake-up was lost)."""
        if not self._running:
            return
        for webhook in await repository.all_tenants_active(self._database):
            if not self.serving(webhook.tenant, webhook.id):
                self._spawn(webhook.tenant, webhook.id).prime(webhook)

    async def stop(self) -> None:
        """Stop every worker (bounded); pending deliveries stay stored for the next start."""
        self._running = False
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        tasks = [*self._tasks.values(), *([self._boot] if self._boot else [])]
        for task in tasks:
            task.cancel()
        try:
            async with asyncio.timeout(STOP_SECONDS):
                await asyncio.gather(*tasks, return_exceptions=True)
        except TimeoutError:
            log.error("webhook workers did not stop in %s s; going on", STOP_SECONDS)
        self._boot = None
        for sender in self._distinct_senders():
            await sender.close()

    def _distinct_senders(self) -> list[Sender]:
        """Each sender once (one may serve several kinds)."""
        return list({id(sender): sender for sender in self._senders.values()}.values())

    async def _start_all(self) -> None:
        delay = RESTART_BASE_SECONDS
        while True:
            try:
                found = await repository.all_tenants_active(self._database)
                break
            except Exception:
                log.exception("could not load webhook subscriptions; retrying in %.0f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_CAP_SECONDS)
        for webhook in found:
            if not self.serving(webhook.tenant, webhook.id):
                self._spawn(webhook.tenant, webhook.id).prime(webhook)
        self._notify()

    # signals -----------------------------------------------------------------------------------

    def wake(self, tenant: str, webhook_id: str) -> None:
        """The subscription changed (created, changed, deleted, retried, replayed)."""
        worker = self._workers.get(tenant, {}).get(webhook_id)
        if worker is not None:
            worker.changed()
        elif self._running:
            self._spawn(tenant, webhook_id)  # it reads the row first, and stops if off or gone

    def _on_events(self, events: list[Event]) -> None:
        by_tenant: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_tenant[event.tenant].append(event)
        for tenant, batch in by_tenant.items():
            workers = list(self._workers.get(tenant, {}).values())
            if workers:
                self._recent.published(tenant, batch)
            for worker in workers:
                worker.events_arrived(batch)

    # workers -----------------------------------------------------------------------------------

    def serving(self, tenant: str, webhook_id: str) -> bool:
        """Whether a worker runs for the subscription."""
        return webhook_id in self._workers.get(tenant, {})

    def _spawn(self, tenant: str, webhook_id: str) -> Worker:
        worker = Worker(self._context, tenant, webhook_id, lambda: self._slot(tenant))
        self._workers.setdefault(tenant, {})[webhook_id] = worker
        self._tasks[worker] = asyncio.create_task(
            self._supervise(worker), name=f"webhook-{webhook_id}"
        )
        return worker

    async def _supervise(self, worker: Worker) -> None:
        """Run the worker; restart it after a failure, with backoff; forget it once it stops."""
        failures = 0
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                try:
                    await worker.run()
                except Exception:
                    healthy = loop.time() - started > RESTART_CAP_SECONDS
                    failures = 1 if healthy else failures + 1
                    delay = min(RESTART_BASE_SECONDS * 2 ** (failures - 1), RESTART_CAP_SECONDS)
                    log.exception(
                        "webhook %s of tenant %s: worker failed; restarting in %.0f s",
                        worker.webhook_id,
                        worker.tenant,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    self.restarts += 1
                    worker.changed()
                    continue
                if not worker.stale:  # no change arrived since it read its subscription
                    return
        finally:
            self._forget(worker)

    def _forget(self, worker: Worker) -> None:
        mine = self._workers.get(worker.tenant, {})
        if mine.get(worker.webhook_id) is worker:
            del mine[worker.webhook_id]
            if not mine:
                self._workers.pop(worker.tenant, None)
                self._recent.forget(worker.tenant)
        self._tasks.pop(worker, None)
        self._notify()

    @asynccontextmanager
    async def _slot(self, tenant: str) -> AsyncIterator[None]:
        """One request in flight: a slot of the tenant (taken first), then one of all."""
        mine = self._per_tenant.get(tenant)
        if mine is None:
            mine = self._per_tenant[tenant] = asyncio.Semaphore(self._limits.per_tenant)
        async with mine, self._overall:
            if self.allowed is not None and not self.allowed():
                raise NotAllowed("this node no longer holds the webhook dispatcher's role")
            yield

    # observing (tests, bench) ------------------------------------------------------------------

    def _judged(self, kind: str, result: str, lag: float | None) -> None:
        if self.judged is not None:
            self.judged(kind, result, lag)

    def _recorded(self) -> None:
        self.attempts += 1
        self._notify()

    def _notify(self) -> None:
        self._changed.set()

    async def recorded_beyond(self, count: int) -> None:
        """Return once more than ``count`` attempts are recorded (tests await, never sleep)."""
        await self._until(lambda: self.attempts > count)

    async def until_quiet(self) -> None:
        """Return once every worker rests: nothing to plan or send now (a retry may be due)."""
        await self._until(self._quiet)

    def _quiet(self) -> bool:
        booted = self._boot is None or self._boot.done()
        workers = [w for mine in self._workers.values() for w in mine.values()]
        return booted and all(worker.resting for worker in workers)

    async def _until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._changed.clear()
            await self._changed.wait()
