"""The session manager: lifecycle, supervision, and engine reports turned into domain writes."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol, cast

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.auth.invalidations import Invalidation, Reason
from zapgate.channels import Channel
from zapgate.clock import Clock, now_ms, to_iso
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.engines.base import (
    AckStatus,
    Capability,
    Engine,
    EngineError,
    EngineEvent,
    EngineNotReady,
    InboundMessage,
    IncomingCall,
    MessageActions,
    MessageEdited,
    MessageRevoked,
    PollVote,
    Presence,
    SendFailed,
    SessionConfig,
    SessionStatus,
    UnsupportedByEngine,
    message_types,
)
from zapgate.engines.registry import EngineRegistry, EngineSpec
from zapgate.errors import (
    AppError,
    EngineRefused,
    InvalidInput,
    NoQrCode,
    NotPaired,
    SessionAlreadyStarted,
    SessionNotFound,
    SessionNotReady,
    SessionNotRunning,
    Unavailable,
    Unsupported,
)
from zapgate.events.model import EventDraft, EventType
from zapgate.idempotency.service import Claim
from zapgate.limits.service import LimitService
from zapgate.messages.model import Message
from zapgate.messages.pacing import Pacer, PacingPolicy
from zapgate.messages.sender import RetryPolicy, Sender
from zapgate.messages.service import MessageService
from zapgate.sessions import calls, repository, sealing
from zapgate.sessions.model import NewSession, Session
from zapgate.sessions.runner import SessionRunner, SupervisionPolicy
from zapgate.sessions.writer import SessionWriter
from zapgate.tasks import cancel_and_wait
from zapgate.tenants import repository as tenant_store
from zapgate.tenants.model import TenantStatus
from zapgate.validation import scrub, scrub_text

log = logging.getLogger(__name__)
HANDOVER_FINISH_SECONDS = 5.0
"""How long a session handed over to another node (its lease still this node's) may take to end
the send in flight."""
TENANT_SUSPENDED = "the tenant is suspended"
"""The reason a suspended tenant's sessions show."""
Key = tuple[str, str]


class Remote(Protocol):
    """Cluster mode: the nodes that run sessions, and calls to them."""

    async def owners(self, keys: list[Key]) -> dict[Key, str]: ...

    async def ask(
        self,
        node: str,
        op: str,
        tenant: str,
        session: str,
        args: dict[str, Any] | None = None,
        seconds: float | None = None,
    ) -> Any: ...


_ACTING_HERE: ContextVar[bool] = ContextVar("acting_here", default=False)
"""Set while this node serves another node's call: act here, never ask further."""
DESCRIBE_SECONDS = 2.0
"""How long a read waits for the health and engine figures of a session on another node."""
SECRET_SHOWN = "********"  # noqa: S105 - the mask, not a secret
"""How a write-only config value (an access token) shows; sent back as it is, it is kept."""


@dataclass(slots=True)
class _Running:
    runner: SessionRunner
    sender: Sender


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """How sessions are supervised."""

    retry: RetryPolicy
    policy: SupervisionPolicy
    health_interval_seconds: float = 5.0
    pacing: PacingPolicy = field(default_factory=PacingPolicy)
    node: str | None = None
    """This node's name, shown on the sessions it runs."""
    starts_at_once: int = 200
    """Engines starting at once on this node: a boot of thousands of sessions starts them in
    waves, so requests are served meanwhile (each wave's reports share write jobs)."""


class SessionManager:
    """Owns the sessions running on this node."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        messages: MessageService,
        engines: EngineRegistry,
        clock: Clock,
        settings: SessionSettings,
        limits: LimitService,
    ) -> None:
        self._database = database
        self._limits = limits
        self._committer = committer
        self._writer = SessionWriter(committer, channel_of=self._engine_channel)
        self.messages = messages
        self.engines = engines
        self._clock = clock
        self._settings = settings
        self._running: dict[Key, _Running] = {}
        self._known: dict[Key, Session] = {}
        self._creating: dict[Key, bool] = {}
        """Sessions being created here, and whether a message was queued for one meanwhile."""
        self._health_task: asyncio.Task[None] | None = None
        self._tenant_work: set[asyncio.Task[None]] = set()
        self._call_work: set[asyncio.Task[Any]] = set()
        """Incoming calls being answered (rejected, replied to) apart from the engine's report."""
        self._tenant_locks: dict[str, asyncio.Lock] = {}
        self._reconciling: set[str] = set()
        """Tenants with a reconciliation waiting to begin."""
        self.placement: Callable[[], None] | None = None
        """Cluster mode: wakes the lease keeper, which decides where sessions run (None: here)."""
        self.signal_queued: Callable[[str, str], None] | None = None
        """Cluster mode: tells the other nodes a message was queued for a session not here."""
        self.remote: Remote | None = None
        """Cluster mode: calls on sessions running on other nodes go to them."""
        self.holds: Callable[[Key], bool] | None = None
        """Cluster mode: whether this node surely still holds a session's lease (its sender
        sends nothing otherwise)."""
        self.restarted: Callable[[str], None] | None = None
        """Told of each engine restart here, with why (``failed``, ``stale``): metrics."""
        self.on_delete: list[Callable[[UnitOfWork, str, str], Awaitable[Callable[[], None]]]] = []
        """Run in a session's delete (``unit, tenant, name``): what goes with it (its
        integrations); each returns what to do once the delete is committed."""
        self._starts = asyncio.Semaphore(settings.starts_at_once)
        self._locks: weakref.WeakValueDictionary[Key, asyncio.Lock] = weakref.WeakValueDictionary()
        messages.on_queued = self.wake_sender

    # boot and shutdown -----------------------------------------------------------------------

    async def ensure_default(self, tenant: str, name: str, engine: str) -> None:
        """Create the default tenant and session on first start."""

        async def job(unit: UnitOfWork) -> None:
            await tenant_store.ensure(unit.connection, tenant, tenant)
            if not await repository.exists(unit.connection, tenant, name):
                await repository.create(unit.connection, NewSession(tenant, name, engine))

        await self._committer.run(job)

    async def boot(self) -> None:
        """Start every session that was running, then watch their health.

        One query finds them and which have queued messages: the others' senders wait for a
        message instead of each reading an empty outbox.
        """
        if self.placement is None:  # in cluster mode the lease keeper starts them
            for session, queued in await repository.all_tenants_to_boot(self._database):
                try:
                    self._launch(session, outbox=queued)
                except Exception:
                    log.exception("could not start session %s/%s", session.tenant, session.name)
        self._health_task = asyncio.create_task(self._watch_health(), name="session-health")

    # cluster mode (zapgate.cluster.leases) -----------------------------------------------------

    def _place(self, session: Session, outbox: bool = True) -> None:
        """Run ``session``: here, or (cluster mode) wherever its lease is taken (here at once
        when this node holds it: a restart on its owner)."""
        key = (session.tenant, session.name)
        if self.placement is None or (self.holds is not None and self.holds(key)):
            self._launch(session, outbox=outbox)
        else:
            self.placement()

    def running_keys(self) -> set[Key]:
        """The sessions running on this node."""
        return set(self._running)

    async def run_owned(self, key: Key) -> bool:
        """Start a session whose lease this node took, if it still wants to run (and its tenant
        is active); False when this node cannot run its engine."""
        async with self._lock(*key):
            if key in self._running:
                return True
            session = await repository.get(self._database, *key)
            async with self._database.connect() as connection:
                status = await tenant_store.status_of(connection, key[0])
            if session is None or session.desired != "running" or status != TenantStatus.ACTIVE:
                return True  # no longer wanted: the keeper gives it up at its next look
            if self.engines.spec(session.engine).unavailable() is not None:
                return False  # this node cannot run its engine: another node should
            try:
                self._launch(session)
            except Exception:
                log.exception("could not start session %s/%s", *key)
            return True

    async def halt_here(self, key: Key, reason: str | None, handover: bool = False) -> None:
        """Stop a session running here whose lease is lost or given up; ``reason``: record it
        as stopped (it no longer wants to run), else leave its status to its next owner. On a
        ``handover`` (the lease is still this node's) the send in flight ends first."""
        async with self._lock(*key):
            if key not in self._running:
                return
            await self._halt(key, handover=handover)
            if reason is not None:
                await self.record_status(*key, SessionStatus.STOPPED)

    async def reconcile_tenant(self, tenant: str) -> None:
        """Make ``tenant``'s sessions here what its status says: an active tenant's sessions that
        want to run are running; a suspended one's are stopped (each keeping what it wants, so a
        resume brings it back as it was); a deleted one's are stopped and forgotten, with their
        engines' files. One reconciliation of a tenant at a time, each reading the status anew,
        so a suspend and a resume in quick succession end as the last of them says."""
        lock = self._tenant_locks.setdefault(tenant, asyncio.Lock())
        async with lock:
            self._reconciling.discard(tenant)  # a change from now on needs one more pass
            async with self._database.connect() as connection:
                status = await tenant_store.status_of(connection, tenant)
            if status == TenantStatus.ACTIVE:
                await self._launch_wanted(tenant)
                return
            for key in [key for key in self._running if key[0] == tenant]:
                async with self._lock(*key):
                    if key in self._running:
                        await self._halt(key)
                        await self.record_status(*key, SessionStatus.STOPPED, TENANT_SUSPENDED)
            if status != TenantStatus.SUSPENDED:  # being deleted, or gone
                self.forget_tenant(tenant)

    async def _launch_wanted(self, tenant: str) -> None:
        for session in await repository.list_for(self._database, tenant):
            key = (tenant, session.name)
            if session.desired != "running" or key in self._running:
                continue
            async with self._lock(*key):
                if key not in self._running:
                    try:
                        self._place(session)
                    except Exception:
                        log.exception("could not start session %s/%s", tenant, session.name)

    def tenant_changed(self, invalidation: Invalidation) -> None:
        """Follow a suspension, resumption or deletion, made here or on another node (in the
        background): see ``reconcile_tenant``."""
        if invalidation.key_id is not None or invalidation.reason is Reason.CREATED:
            return
        if invalidation.tenant in self._reconciling:
            return  # one pass is waiting already, and it reads the status when it runs
        self._reconciling.add(invalidation.tenant)
        task = asyncio.create_task(
            self.reconcile_tenant(invalidation.tenant), name=f"zapgate-tenant-{invalidation.tenant}"
        )
        self._tenant_work.add(task)
        task.add_done_callback(self._tenant_work.discard)

    def forget_tenant(self, tenant: str) -> None:
        """Drop what this node remembers of a deleted ``tenant``, and its engines' files."""
        for key in [key for key in self._known if key[0] == tenant]:
            del self._known[key]
        self.messages.depth.forget_tenant(tenant)
        self.engines.forget_tenant(tenant)
        self._limits.forget(tenant)

    async def shutdown(self) -> None:
        """Stop every engine on this node, keeping what each session wants for the next boot."""
        await cancel_and_wait(self._health_task, *self._tenant_work, *self._call_work)
        self._health_task = None
        await asyncio.gather(*(self._halt(key) for key in list(self._running)))

    # queries ---------------------------------------------------------------------------------

    async def get(self, tenant: str, name: str) -> Session:
        """A session, or SessionNotFound."""
        session = await repository.get(self._database, tenant, name)
        if session is None:
            self._known.pop((tenant, name), None)
            raise SessionNotFound(f"no session {name!r}")
        self._known[(tenant, name)] = session
        return session

    async def require(self, tenant: str, name: str) -> Session:
        """Like ``get`` but served from memory when the session is known (hot path)."""
        return self._known.get((tenant, name)) or await self.get(tenant, name)

    async def list_sessions(self, tenant: str) -> list[Session]:
        """The sessions of ``tenant``."""
        return await repository.list_for(self._database, tenant)

    def describe(self, session: Session) -> dict[str, Any]:
        """The wire form with what only this node knows (health)."""
        figures = self._figures((session.tenant, session.name))
        public = {
            **session.public(),
            "channel": self.channel(session),
            "capabilities": self.message_types(session),
        }
        hidden = self._secret_keys(session.engine)
        if hidden:  # write-only: shown as set, never as their values
            public["config"] = {
                key: SECRET_SHOWN if key in hidden else value
                for key, value in session.config.items()
            }
        if figures is None:
            return {**public, "health": None, "node": None, "engine_stats": None}
        return {**public, **figures, "node": self._settings.node}

    def message_types(self, session: Session) -> list[str]:
        """The message types the session's engine can send (the running one's, if here)."""
        try:
            return message_types(self._capabilities(session))
        except AppError:  # an engine this process does not know
            return []

    def channel(self, session: Session) -> str:
        """The channel of the session's engine."""
        return self._engine_channel(session.engine)

    def _engine_channel(self, engine: str) -> str:
        """The channel of ``engine`` (``whatsapp`` for one this process does not know)."""
        try:
            return self.engines.spec(engine).channel
        except AppError:
            return Channel.WHATSAPP

    def _capabilities(self, session: Session) -> frozenset[Capability]:
        """What the session's engine can do: the running instance's if here, else its spec's
        for the session's config; Unsupported for an unknown engine."""
        running = self._running.get((session.tenant, session.name))
        if running is not None and running.runner.engine is not None:
            return running.runner.engine.capabilities
        spec = self.engines.spec(session.engine)
        return spec.capabilities_for(calls.engine_options(session.config))

    def _figures(self, key: Key) -> dict[str, Any] | None:
        """Health and engine figures of a session running here (None elsewhere)."""
        running = self._running.get(key)
        if running is None:
            return None
        sends = getattr(running.runner.engine, "sends", None)  # the simulator counts them
        return {
            "health": running.runner.health,
            "engine_stats": {"sends": sends} if isinstance(sends, int) else None,
        }

    async def describe_all(self, sessions: list[Session]) -> list[dict[str, Any]]:
        """``describe`` of each; in cluster mode a session running on another node shows that
        node, and the health and engine figures it reports (within ``DESCRIBE_SECONDS``)."""
        described = [self.describe(session) for session in sessions]
        if self.remote is None:
            return described
        shown = {(s.tenant, s.name): d for s, d in zip(sessions, described, strict=True)}
        elsewhere = [key for key, one in shown.items() if one["node"] is None]
        if not elsewhere:
            return described
        owners = await self.remote.owners(elsewhere)
        by_node: dict[str, list[Key]] = {}
        for key, node in owners.items():
            shown[key]["node"] = node
            by_node.setdefault(node, []).append(key)
        asks = [self._described_by(node, keys, shown) for node, keys in by_node.items()]
        await asyncio.gather(*asks)
        return described

    async def _described_by(
        self, node: str, keys: list[Key], shown: dict[Key, dict[str, Any]]
    ) -> None:
        assert self.remote is not None
        for tenant in {tenant for tenant, _ in keys}:
            names = [name for t, name in keys if t == tenant]
            try:
                figures = await self.remote.ask(
                    node, "describe", tenant, "", {"names": names}, DESCRIBE_SECONDS
                )
            except AppError:  # that node is slow or gone: show what the database knows
                continue
            for name, extra in (figures or {}).items():
                if (tenant, name) in shown:
                    shown[(tenant, name)].update(
                        health=extra.get("health"), engine_stats=extra.get("engine_stats")
                    )

    def running_count(self) -> int:
        """How many sessions run on this node."""
        return len(self._running)

    def qr(self, tenant: str, name: str) -> str:
        """The QR waiting to be scanned; NoQrCode otherwise."""
        running = self._running.get((tenant, name))
        if running is None or running.runner.qr is None:
            raise NoQrCode(f"session {name!r} is not waiting for a QR scan")
        return running.runner.qr

    async def qr_anywhere(self, tenant: str, name: str) -> str:
        """``qr``, from the node running the session (cluster mode)."""
        if owner := await self._elsewhere(tenant, name):
            return str(await self._ask(owner, "qr", tenant, name))
        return self.qr(tenant, name)

    def qr_waiting(self, tenant: str, name: str) -> bool:
        """Whether the session shows a QR to scan right now."""
        running = self._running.get((tenant, name))
        return running is not None and running.runner.qr is not None

    async def me(self, tenant: str, name: str) -> dict[str, Any]:
        """The connected account; NotPaired before pairing."""
        session = await self.get(tenant, name)
        if session.me is None:
            raise NotPaired(f"session {name!r} has no paired account")
        return session.me

    def own_number(self, tenant: str, name: str) -> str:
        """The connected account's number, when known."""
        running = self._running.get((tenant, name))
        me = (running.runner.me if running else None) or {}
        return str(me.get("id", ""))

    # commands --------------------------------------------------------------------------------

    async def create(
        self,
        tenant: str,
        name: str,
        engine: str,
        config: dict[str, Any],
        metadata: dict[str, Any],
        start: bool,
        claim: Claim | None = None,
    ) -> Session:
        """Store a new session (and start it unless ``start`` is False)."""
        self._check_config(engine, config)
        self.engines.require_available(engine)
        limits = await self._limits.of(tenant)
        desired = "running" if start else "stopped"
        key = (tenant, name)
        self._creating.setdefault(key, False)
        try:
            new = NewSession(tenant, name, engine, config, metadata, desired)
            session, queued = await self._writer.create(new, limits, claim)
        finally:
            # A send committed with the creation (or just after) may have woken nobody: its
            # sender did not exist yet. wake_sender noted it here.
            woken = self._creating.pop(key, False)
        self._known[key] = session
        self.messages.depth.forget(tenant, name)
        if start:
            self._place(session, outbox=queued or woken)
        return session

    async def update(
        self,
        tenant: str,
        name: str,
        config: dict[str, Any] | None,
        metadata: dict[str, Any] | None,
    ) -> Session:
        """Change config or metadata; a new config applies at the next (re)start."""
        session = await self.get(tenant, name)
        values: dict[str, Any] = {}
        if config is not None:
            config = self._kept_secrets(session, config)
            self._check_config(session.engine, config)
            values["config"] = sealing.seal(config, f"{tenant}/{name}")
        if metadata is not None:
            values["metadata"] = metadata
        return await self._write(tenant, name, values) if values else session

    async def delete(self, tenant: str, name: str) -> None:
        """Stop and remove a session; its queued messages fail with a reason."""
        if owner := await self._elsewhere(tenant, name):
            await self._ask(owner, "delete", tenant, name)
            return
        async with self._lock(tenant, name):
            await self.get(tenant, name)
            self._known.pop((tenant, name), None)  # new sends look it up (and find it gone)
            await self._halt((tenant, name))

            async def job(unit: UnitOfWork) -> list[Callable[[], None]]:
                await repository.delete(unit.connection, tenant, name)
                return [await hook(unit, tenant, name) for hook in self.on_delete]

            for then in await self._committer.run(job):
                then()
            self.messages.depth.forget(tenant, name)
            await self.messages.fail_queued(tenant, name, "the session was deleted")
            self._placed()

    async def start(self, tenant: str, name: str) -> Session:
        """Start a stopped (or given-up) session."""
        if owner := await self._elsewhere(tenant, name):
            await self._ask(owner, "start", tenant, name)
            return await self.get(tenant, name)
        async with self._lock(tenant, name):
            session = await self.get(tenant, name)
            running = self._running.get((tenant, name))
            if running is not None and running.runner.supervising:
                raise SessionAlreadyStarted(f"session {name!r} is already {session.status.value}")
            return await self._relaunch(session)

    async def stop(self, tenant: str, name: str) -> Session:
        """Stop a running session."""
        if owner := await self._elsewhere(tenant, name):
            await self._ask(owner, "stop", tenant, name)
            return await self.get(tenant, name)
        async with self._lock(tenant, name):
            session = await self.get(tenant, name)
            if (tenant, name) not in self._running:
                if self.placement is None or session.desired != "running":
                    raise SessionNotRunning(f"session {name!r} is not running")
                await self._write(tenant, name, {"desired": "stopped"})
                self.placement()  # its owner stops it at its next look
                return await self.get(tenant, name)
            await self._halt((tenant, name))
            await self._write(tenant, name, {"desired": "stopped"})
            await self.record_status(tenant, name, SessionStatus.STOPPED)
            self._placed()
            return await self.get(tenant, name)

    async def restart(self, tenant: str, name: str) -> Session:
        """Stop (if running) and start again."""
        if owner := await self._elsewhere(tenant, name):
            await self._ask(owner, "restart", tenant, name)
            return await self.get(tenant, name)
        async with self._lock(tenant, name):
            return await self._relaunch(await self.get(tenant, name))

    async def logout(self, tenant: str, name: str) -> Session:
        """Forget the paired account; the session stops and needs a new QR scan to start."""
        if owner := await self._elsewhere(tenant, name):
            await self._ask(owner, "logout", tenant, name)
            return await self.get(tenant, name)
        async with self._lock(tenant, name):
            await self.get(tenant, name)
            await self._halt((tenant, name), logout=True)
            await self._write(tenant, name, {"desired": "stopped", "me": None})
            await self.record_status(tenant, name, SessionStatus.STOPPED, "logged out")
            self._placed()
            return await self.get(tenant, name)

    async def _relaunch(self, session: Session) -> Session:
        self.engines.require_available(session.engine)
        await self._halt((session.tenant, session.name))
        session = await self._write(session.tenant, session.name, {"desired": "running"})
        self._place(session)
        return session

    def _placed(self) -> None:
        """Cluster mode: a session stopped or went here; the lease keepers look now."""
        if self.placement is not None:
            self.placement()

    async def _elsewhere(self, tenant: str, name: str) -> str | None:
        """Cluster mode: the node running the session, when it is another node."""
        if self.remote is None or _ACTING_HERE.get() or (tenant, name) in self._running:
            return None
        owner = (await self.remote.owners([(tenant, name)])).get((tenant, name))
        return owner if owner is not None and owner != self._settings.node else None

    async def _ask(
        self, node: str, op: str, tenant: str, name: str, args: dict[str, Any] | None = None
    ) -> Any:
        assert self.remote is not None
        return await self.remote.ask(node, op, tenant, name, args)

    async def serve_call(self, op: str, tenant: str, name: str, args: dict[str, Any]) -> Any:
        """Another node's call on a session running here (cluster mode): act here."""
        _ACTING_HERE.set(True)  # this task serves one call only
        if op == "describe":
            found = {n: self._figures((tenant, str(n))) for n in args.get("names", [])}
            return {n: figures for n, figures in found.items() if figures is not None}
        if (tenant, name) not in self._running:  # it moved since the caller looked: ask again
            raise Unavailable(f"session {name!r} moved to another node; try again")
        if op == "qr":
            return self.qr(tenant, name)
        if op == "pair":
            return await self.pairing_code(tenant, name, str(args.get("phone", "")))
        if op == "scan":
            return await self.simulate_scan(tenant, name)
        if op == "inbound":
            message = await self.inject_inbound(
                tenant, name, str(args.get("sender")), str(args.get("text"))
            )
            return message.id
        if op == "edit":
            await self.edit_message(tenant, name, args["chat"], args["id"], args["text"])
            return None
        if op == "revoke":
            await self.revoke_message(tenant, name, args["chat"], args["id"])
            return None
        if op == "presence":
            await self.set_presence(tenant, name, args["chat"], Presence(args["state"]))
            return None
        if op in ("start", "stop", "restart", "logout", "delete"):
            await getattr(self, op)(tenant, name)
            return None
        raise Unsupported(f"unknown call {op!r}")

    def _lock(self, tenant: str, name: str) -> asyncio.Lock:
        """One lifecycle change of a session at a time (two starts must not make two engines).

        Held weakly: a lock lives while someone holds or waits for it, so names that were
        never sessions (404s) leave nothing behind.
        """
        lock = self._locks.get((tenant, name))
        if lock is None:
            lock = asyncio.Lock()
            self._locks[(tenant, name)] = lock
        return lock

    async def pairing_code(self, tenant: str, name: str, phone: str) -> str:
        """Ask the engine for a code to type on the phone instead of scanning the QR."""
        if owner := await self._elsewhere(tenant, name):
            return str(await self._ask(owner, "pair", tenant, name, {"phone": phone}))
        engine = self._engine_of(await self.get(tenant, name), Capability.PAIRING_CODE)
        self.qr(tenant, name)
        try:
            return await engine.request_pairing_code(phone)
        except EngineError as error:
            raise NoQrCode(str(error)) from None

    async def simulate_scan(self, tenant: str, name: str) -> None:
        """Simulator: scan the QR that is showing."""
        if owner := await self._elsewhere(tenant, name):
            await self._ask(owner, "scan", tenant, name)
            return
        simulator = await self._simulator(tenant, name)
        self.qr(tenant, name)
        try:
            await simulator.simulate_scan()
        except EngineError as error:
            raise NoQrCode(str(error)) from None

    async def inject_inbound(self, tenant: str, name: str, sender: str, text: str) -> Message:
        """Simulator: deliver an inbound message."""
        if owner := await self._elsewhere(tenant, name):
            sent = await self._ask(owner, "inbound", tenant, name, {"sender": sender, "text": text})
            return await self.messages.get(tenant, str(sent))
        simulator = await self._simulator(tenant, name)
        running = self._running.get((tenant, name))
        if running is None or not running.runner.ready.is_set():
            raise SessionNotReady(f"session {name!r} is not WORKING")
        try:
            message_id: str = await simulator.inject_inbound(sender, text)
        except EngineError as error:
            raise SessionNotReady(str(error)) from None
        return self.messages.just_received(message_id) or await self.messages.get(
            tenant, message_id
        )

    async def inject_rich(self, tenant: str, name: str, inbound: InboundMessage) -> Message:
        """Simulator: deliver a message of any type (on the node running the session)."""
        if await self._elsewhere(tenant, name):
            raise Unsupported(
                "in cluster mode, simulated messages other than texts go through the node "
                "running the session (see its node in GET /api/v1/sessions/{session})"
            )
        simulator = await self._simulator(tenant, name)
        running = self._running.get((tenant, name))
        if running is None or not running.runner.ready.is_set():
            raise SessionNotReady(f"session {name!r} is not WORKING")
        own = self.own_number(tenant, name)
        try:
            message_id: str = await simulator.inject(replace(inbound, recipient=own))
        except EngineError as error:
            raise SessionNotReady(str(error)) from None
        return self.messages.just_received(message_id) or await self.messages.get(
            tenant, message_id
        )

    # message actions (engines with EDIT, REVOKE, PRESENCE, CALLS) -----------------------------

    async def edit_message(
        self, tenant: str, name: str, chat: str, engine_message_id: str, text: str
    ) -> None:
        """Have the engine edit a sent text (the session's node, in cluster mode)."""
        if owner := await self._elsewhere(tenant, name):
            args = {"chat": chat, "id": engine_message_id, "text": text}
            await self._ask(owner, "edit", tenant, name, args)
            return
        engine = self._actions(await self.require(tenant, name), Capability.EDIT, "edit")
        await _engine_call(engine.edit(chat, engine_message_id, text))

    async def revoke_message(
        self, tenant: str, name: str, chat: str, engine_message_id: str
    ) -> None:
        """Have the engine delete a sent message for everyone."""
        if owner := await self._elsewhere(tenant, name):
            await self._ask(owner, "revoke", tenant, name, {"chat": chat, "id": engine_message_id})
            return
        engine = self._actions(await self.require(tenant, name), Capability.REVOKE, "revoke")
        await _engine_call(engine.revoke(chat, engine_message_id))

    async def set_presence(self, tenant: str, name: str, chat: str, state: Presence) -> None:
        """Show ``state`` (typing, recording, paused) in ``chat``."""
        if owner := await self._elsewhere(tenant, name):
            await self._ask(owner, "presence", tenant, name, {"chat": chat, "state": state.value})
            return
        engine = self._actions(await self.require(tenant, name), Capability.PRESENCE, "presence")
        await _engine_call(engine.presence(chat, state))

    def _actions(self, session: Session, needed: Capability, method: str) -> MessageActions:
        """The running engine, if it has ``needed`` and the method doing it (Unsupported)."""
        engine = self._engine_of(session, needed)
        if not callable(getattr(engine, method, None)):
            raise Unsupported(f"engine {engine.name!r} does not support {needed.value}")
        return cast(MessageActions, engine)

    async def record_engine_event(self, tenant: str, name: str, event: EngineEvent) -> None:
        """What an engine reported besides messages and acks, turned into writes and events."""
        revisions = self.messages.revisions
        if isinstance(event, MessageEdited):
            await revisions.record_edit(tenant, name, event)
        elif isinstance(event, MessageRevoked):
            await revisions.record_revoke(tenant, name, event)
        elif isinstance(event, PollVote):
            await revisions.record_vote(tenant, name, event)
        elif isinstance(event, SendFailed):
            await self.messages.record_undelivered(
                tenant, name, scrub_text(event.engine_message_id), scrub_text(event.reason)
            )
        elif isinstance(event, IncomingCall):
            task = asyncio.create_task(self.answer_call(tenant, name, event), name="zapgate-call")
            self._call_work.add(task)
            task.add_done_callback(self._call_work.discard)

    async def answer_call(self, tenant: str, name: str, call: IncomingCall) -> dict[str, Any]:
        """Do what the session's ``calls`` config says with an incoming call (reject it, reply
        to the caller through the outbox), then record ``call.received`` saying what was done.
        Apart from the engine's report: an engine may not be asked while it reports."""
        session = await self.require(tenant, name)
        policy = calls.call_policy(session.config)
        caller = scrub_text(call.caller)
        shown = caller[: -len("@c.us")] if caller.endswith("@c.us") else caller
        problems: list[str] = []
        rejected = False
        if policy.reject:
            try:
                engine = self._actions(session, Capability.CALLS, "reject_call")
                await _engine_call(engine.reject_call(call.call_id))
                rejected = True
            except AppError as error:
                problems.append(f"not rejected: {error.detail}")
        reply_id = None
        if policy.reply is not None:
            try:
                own = self.own_number(tenant, name)
                reply = await self.messages.accept(tenant, name, own, shown, policy.reply)
                reply_id = reply.id
            except AppError as error:
                problems.append(f"not replied to: {error.detail}")
        payload = {
            "id": scrub_text(call.call_id),
            "from": shown,
            "video": call.video,
            "timestamp": to_iso(call.timestamp_ms or now_ms()),
            "rejected": rejected,
            "reply_message_id": reply_id,
            "error": "; ".join(problems) or None,
        }
        await self.record_event(tenant, name, EventType.CALL_RECEIVED, payload)
        return payload

    async def simulate_call(self, tenant: str, name: str, caller: str, video: bool) -> str:
        """Simulator: ``caller`` calls the session now; returns the call's id."""
        if await self._elsewhere(tenant, name):
            raise Unsupported(
                "in cluster mode, simulated calls go through the node running the session"
            )
        simulator = await self._simulator(tenant, name)
        try:
            call_id: str = await simulator.simulate_call(caller, video)
        except EngineError as error:
            raise SessionNotReady(str(error)) from None
        return call_id

    async def simulate_event(self, tenant: str, name: str, event: EngineEvent) -> None:
        """Simulator: the engine reports ``event`` (an edit or revoke of a received message)."""
        if await self._elsewhere(tenant, name):
            raise Unsupported(
                "in cluster mode, simulated edits and revokes go through the node running the "
                "session"
            )
        simulator = await self._simulator(tenant, name)
        try:
            await simulator.simulate_event(event)
        except EngineError as error:
            raise SessionNotReady(str(error)) from None

    def callback_sink(self, tenant: str, name: str) -> _Reports:
        """Where a provider's callback for a session reports (on any node: what it says is
        what the engine did, recorded whatever node runs the session)."""
        return _Reports(self, tenant, name)

    def sending(self, tenant: str, name: str, message_id: str) -> bool:
        """Whether the session's sender has ``message_id`` in the engine's hands right now
        (cluster mode: only known on the session's node, where a cancel is then refused too)."""
        running = self._running.get((tenant, name))
        return running is not None and running.sender.holds(message_id)

    def wake_sender(self, tenant: str, name: str) -> None:
        """Tell the session's sender that a message was queued."""
        running = self._running.get((tenant, name))
        if running is not None:
            running.sender.wake()
        elif (tenant, name) in self._creating:
            self._creating[(tenant, name)] = True
        elif self.signal_queued is not None:  # cluster mode: it may run on another node
            self.signal_queued(tenant, name)

    def wake_here(self, tenant: str, name: str) -> None:
        """Wake the sender of a session if it runs here (a signal from another node)."""
        running = self._running.get((tenant, name))
        if running is not None:
            running.sender.wake()

    def runner(self, tenant: str, name: str) -> SessionRunner | None:
        """The runner of a session on this node (for tests and diagnostics)."""
        running = self._running.get((tenant, name))
        return running.runner if running else None

    # engine reports ----------------------------------------------------------------------------

    async def record_status(
        self, tenant: str, name: str, status: SessionStatus, reason: str | None = None
    ) -> None:
        """Store a status change with its ``session.status`` event (none if the session is gone)."""
        values = {"status": status.value, "status_reason": reason}
        event = (EventType.SESSION_STATUS, {"status": status.value, "reason": reason})
        self._remember(await self._writer.update(tenant, name, values, event))

    async def record_account(self, tenant: str, name: str, account: dict[str, Any]) -> None:
        """Store the paired account; SessionNotFound if the session is gone."""
        session = await self._writer.update(tenant, name, {"me": scrub(account)})
        if session is None:
            raise SessionNotFound(f"no session {name!r}")
        self._remember(session)

    async def _write(self, tenant: str, name: str, values: dict[str, Any]) -> Session:
        async def job(unit: UnitOfWork) -> Session | None:
            return await repository.update(unit.connection, tenant, name, values)

        session = await self._committer.run(job)
        if session is None:
            raise SessionNotFound(f"no session {name!r}")
        self._remember(session)
        return session

    async def record_event(
        self, tenant: str, name: str, event_type: str, payload: dict[str, Any]
    ) -> None:
        """Append an event of the session (no row changes)."""

        known = self._known.get((tenant, name))
        channel = self._engine_channel(known.engine) if known else Channel.WHATSAPP

        async def job(unit: UnitOfWork) -> None:
            unit.emit(EventDraft(tenant, name, event_type, payload, channel=channel))

        await self._committer.run(job)

    def _check_config(self, engine: str, config: dict[str, Any]) -> None:
        """InvalidInput unless ``config`` is valid: zapgate's keys (``calls``) and the rest for
        the engine."""
        self._refuse_sealed(config)
        calls.check(config)
        self.engines.check_config(engine, calls.engine_options(config))

    def _kept_secrets(self, session: Session, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with the write-only values it leaves out (or sends back as shown) taken
        from the stored one; InvalidInput when it would send them somewhere new (a changed
        ``base_url``: they must be given again)."""
        self._refuse_sealed(config)
        spec = self._spec(session.engine)
        if spec is None or not spec.secret_keys:
            return config
        moved = [k for k in spec.secrets_go_to if config.get(k) != session.config.get(k)]
        for key in sorted(spec.secret_keys):
            if config.get(key, SECRET_SHOWN) != SECRET_SHOWN or key not in session.config:
                continue
            if moved:
                raise InvalidInput(
                    f"config.{key}: give it again when {', '.join(moved)} changes (it would "
                    "be sent there)"
                )
            config = {**config, key: session.config[key]}
        return config

    @staticmethod
    def _refuse_sealed(config: dict[str, Any]) -> None:
        sealed = sorted(key for key, value in config.items() if sealing.is_sealed(value))
        if sealed:
            raise InvalidInput(f"config.{sealed[0]}: a sealed value is the server's, not yours")

    def _spec(self, engine: str) -> EngineSpec | None:
        try:
            return self.engines.spec(engine)
        except AppError:  # an engine this build no longer has
            return None

    def _secret_keys(self, engine: str) -> frozenset[str]:
        spec = self._spec(engine)
        return spec.secret_keys if spec is not None else frozenset()

    def _remember(self, session: Session | None) -> None:
        if session is not None:
            self._known[(session.tenant, session.name)] = session

    # running ---------------------------------------------------------------------------------

    def _launch(self, session: Session, outbox: bool = True) -> None:
        """Run ``session`` here; its sender reads the outbox at once unless ``outbox`` is False
        (known empty: it waits for a message to be queued)."""
        key = (session.tenant, session.name)
        if key in self._running:
            raise RuntimeError(f"session {key} is already running on this node")
        spec = self.engines.spec(session.engine)
        runner = SessionRunner(
            SessionConfig(
                session.tenant, session.name, calls.engine_options(session.config), session.me
            ),
            spec.factory,
            _Reports(self, *key),
            self._clock,
            self._settings.policy,
            self._starts,
            self.restarted,
        )
        pacer = None if spec.paces_itself else Pacer(self._settings.pacing, self._clock)
        fence = None if self.holds is None else partial(self.holds, key)
        sender = Sender(
            self.messages,
            runner,
            session.tenant,
            session.name,
            self._settings.retry,
            pacer,
            fence,
            window=spec.send_window,
        )
        self._running[key] = _Running(runner, sender)
        sender.start(check=outbox)
        runner.start()

    async def _halt(self, key: Key, logout: bool = False, handover: bool = False) -> None:
        running = self._running.pop(key, None)
        if running is None:
            return
        await running.sender.stop(HANDOVER_FINISH_SECONDS if handover else 0.0)
        await running.runner.stop(logout=logout)

    async def _simulator(self, tenant: str, name: str) -> Any:
        return self._engine_of(await self.require(tenant, name), Capability.SIMULATION)

    def running_engine(self, session: Session, needed: Capability) -> Engine:
        """The engine running ``session`` here, if it has ``needed``: Unsupported when its
        engine lacks it, SessionNotRunning when it is not running here."""
        return self._engine_of(session, needed)

    def _engine_of(self, session: Session, needed: Capability) -> Engine:
        """The engine running the session here, if it has ``needed``.

        Unsupported when the engine lacks it (the running instance decides, else the spec);
        SessionNotRunning when it could but is not running.
        """
        running = self._running.get((session.tenant, session.name))
        engine = running.runner.engine if running else None
        if needed not in self._capabilities(session):
            shown = engine.name if engine else session.engine
            raise Unsupported(f"engine {shown!r} does not support {needed.value.replace('_', ' ')}")
        if engine is None:
            raise SessionNotRunning(f"session {session.name!r} is not running")
        return engine

    async def _watch_health(self) -> None:
        while True:
            await self._clock.sleep(self._settings.health_interval_seconds)
            try:
                await self.check_health()
            except Exception:
                log.exception("session health check failed; trying again next round")

    async def check_health(self) -> None:
        """Restart every running session whose engine has been silent too long."""
        for (tenant, name), running in list(self._running.items()):
            if running.runner.is_stale():
                log.warning("session %s/%s is stale; restarting it", tenant, name)
                await running.runner.mark_stale()


class _Reports:
    """What one session's runner reports, turned into the manager's writes and events.

    In cluster mode a report about the session itself (status, QR, account, health) from a node
    no longer sure of the session's lease is dropped: that node was paused and another runs the
    session now, whose reports count. What the engine did (an inbound message, an ack of a sent
    one) is recorded whatever the lease: it happened, and forgetting it would resend.
    """

    __slots__ = ("_manager", "_name", "_tenant")

    def __init__(self, manager: SessionManager, tenant: str, name: str) -> None:
        self._manager = manager
        self._tenant = tenant
        self._name = name

    async def status(self, status: SessionStatus, reason: str | None) -> None:
        if not self._stale():
            await self._manager.record_status(self._tenant, self._name, status, scrub(reason))

    async def qr(self, raw: str) -> None:
        await self._event(EventType.SESSION_QR, {"qr": scrub_text(raw)})

    async def me(self, account: dict[str, Any]) -> None:
        if not self._stale():
            await self._manager.record_account(self._tenant, self._name, account)

    async def message(self, inbound: InboundMessage) -> str:
        messages = self._manager.messages
        return (await messages.record_inbound(self._tenant, self._name, inbound)).id

    async def ack(self, engine_message_id: str, status: AckStatus) -> None:
        messages = self._manager.messages
        await messages.record_ack(self._tenant, self._name, engine_message_id, status)

    async def event(self, event: EngineEvent) -> None:
        await self._manager.record_engine_event(self._tenant, self._name, event)

    async def health(self, state: str) -> None:
        await self._event(EventType.SESSION_HEALTH, {"health": state})

    async def _event(self, event_type: str, payload: dict[str, Any]) -> None:
        if not self._stale():
            await self._manager.record_event(self._tenant, self._name, event_type, payload)

    def _stale(self) -> bool:
        holds = self._manager.holds
        if holds is None or holds((self._tenant, self._name)):
            return False
        log.info("dropped a report of %s/%s: its lease is not surely this node's", *self._key)
        return True

    @property
    def _key(self) -> Key:
        return (self._tenant, self._name)


async def _engine_call(work: Awaitable[None]) -> None:
    """Await an engine's action, its errors turned into the API's: not connected (409), cannot
    (422), would not (409), failed for now (503)."""
    try:
        await work
    except EngineNotReady as error:
        raise SessionNotReady(str(error)) from None
    except UnsupportedByEngine as error:
        raise Unsupported(str(error)) from None
    except EngineError as error:
        if error.transient:
            raise Unavailable(str(error)) from None
        raise EngineRefused(str(error)) from None
