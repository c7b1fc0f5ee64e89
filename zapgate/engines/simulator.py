"""The simulator: a phone with contacts, in-process, reporting through the same sink as others.

Per session (``SimulatorConfig``) it pairs by QR (automatically or on ``simulate_scan``) or by a
pairing code, refreshes its QR and gives up after a few, acknowledges sends (delivered, then
read), answers from an echo contact and from reply rules, fails sends at a given rate, drops
and restores its connection, and sends heartbeats. All waiting goes through the injected
``Clock`` and all chance through one ``random.Random(seed)``, so a seed replays a run.
Reply rules are tenants' RE2 patterns, matched on one thread of their own, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache, partial
from operator import itemgetter
from typing import Any

from pydantic import ValidationError

from zapgate.clock import Clock, now_ms
from zapgate.engines.base import (
    SEND_TYPES,
    AckStatus,
    Capability,
    EngineEvent,
    EngineNotReady,
    EngineSink,
    InboundMessage,
    IncomingCall,
    OutboundMessage,
    PermanentEngineError,
    PollVote,
    Presence,
    SendReceipt,
    SessionConfig,
    SessionStatus,
    TransientEngineError,
    UnsupportedMessageType,
    WrongEngineState,
)
from zapgate.engines.simulator_config import Latency, Rule, SimulatorConfig, fixed, parse_config
from zapgate.engines.simulator_directory import SimulatedDirectory
from zapgate.ids import ulid

log = logging.getLogger(__name__)

QR_TIMEOUT_REASON = "QR code was not scanned in time"
SEND_FAILURE = "simulated send failure"
_CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
_QR_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"

Report = Callable[[EngineSink], Awaitable[object]]
Timeline = list[tuple[float, Callable[[], Awaitable[None]]]]


@dataclass(frozen=True, slots=True)
class SimulatorDefaults:
    """Process-wide defaults (from settings) for what a session's config leaves out."""

    pairing_seconds: float = 0.2
    ack_seconds: float = 0.05
    echo_contact: str = "5511900000000"


_UNSEEDED = random.Random()
"""The chance of every simulator whose config has no seed: nothing to replay, so one generator
serves them all (each costs 2.5 KB and a read of the OS's entropy)."""

RECENT_SENDS = 20
MAX_PENDING_SENDS = 1000
"""Sends still awaiting acks or replies, per session; one more is a transient failure."""
BUSY = "the simulated phone is busy: too many sends awaiting acks or replies"
RINGING_KEPT = 100
"""Calls that can still be rejected, per session (the oldest stop ringing first)."""
RECENT_ACTIONS = 50


class SimulatorEngine(SimulatedDirectory):
    """A simulated WhatsApp account (implements ``zapgate.engines.base.Engine``)."""

    name = "simulator"
    capabilities = frozenset(
        {
            *(Capability(kind) for kind in SEND_TYPES),
            Capability.EDIT,
            Capability.REVOKE,
            Capability.PRESENCE,
            Capability.CALLS,
            Capability.QR,
            Capability.PAIRING_CODE,
            Capability.SIMULATION,
            Capability.CHATS,
            Capability.CONTACTS,
            Capability.GROUPS,
        }
    )
    """Every message type; a session's config ``types`` narrows them (``narrowed``)."""

    @classmethod
    def narrowed(cls, options: dict[str, Any]) -> frozenset[Capability]:
        """The capabilities of a session with config ``options``."""
        types = cls._parse(options).types
        if types is None:
            return cls.capabilities
        kept = {Capability(kind) for kind in types}
        return frozenset(c for c in cls.capabilities if c.value not in SEND_TYPES or c in kept)

    def __init__(self, defaults: SimulatorDefaults, clock: Clock) -> None:
        self._defaults = defaults
        self._clock = clock
        self._config = SimulatorConfig()
        self._rng = _UNSEEDED
        self._sink: EngineSink | None = None
        self._session_name = ""
        self._recent_sends: deque[OutboundMessage] | None = None
        self.actions: deque[tuple[str, ...]] = deque(maxlen=RECENT_ACTIONS)
        """The last edits, revokes, presences and call rejections asked, as tuples."""
        self.presences: dict[str, Presence] = {}
        """What each chat shows of this phone (the last presence set there)."""
        self._ringing: dict[str, IncomingCall] = {}
        self.sends = 0
        self.sending = 0
        """Sends in flight now (in their ``send_latency``)."""
        """Sends this engine performed (what a phone would count): a message sent twice, by
        two nodes or after a retry, shows here."""
        self._status = SessionStatus.STOPPED
        self._silent = False
        self._forgotten = False
        self._run = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._pairing_tasks: set[asyncio.Task[None]] = set()
        self._code_tasks: set[asyncio.Task[None]] = set()
        self._send_tasks: set[asyncio.Task[None]] = set()
        self._groups = (self._tasks, self._pairing_tasks, self._code_tasks, self._send_tasks)
        self._epoch_ms = now_ms()
        self._epoch_monotonic = clock.monotonic()

    # inspection ------------------------------------------------------------------------------

    @property
    def status(self) -> SessionStatus:
        """The state the engine is in (what it last reported, unless silent)."""
        return self._status

    @property
    def recent_sends(self) -> deque[OutboundMessage]:
        """The last ``RECENT_SENDS`` messages sent (made at the first send: most phones idle)."""
        if self._recent_sends is None:
            self._recent_sends = deque(maxlen=RECENT_SENDS)
        return self._recent_sends

    @property
    def tasks(self) -> frozenset[asyncio.Task[None]]:
        """The engine's background tasks still running."""
        return frozenset(self._tasks)

    # Engine ----------------------------------------------------------------------------------

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        """STARTING, then WORKING at once (``restore``) or SCAN_QR_CODE with a first QR."""
        config = self._parse(session.options)
        await self._halt()
        run = self._run
        self.capabilities = self.narrowed(session.options)
        self._config, self._sink, self._session_name = config, sink, session.name
        self._rng = _UNSEEDED if config.seed is None else random.Random(config.seed)
        self._silent = False
        await self._set_status(SessionStatus.STARTING, run)
        restore: dict[str, Any] | None = getattr(session, "restore", None)
        if restore and not self._forgotten:
            await self._emit(partial(_report_me, dict(restore)), run)
            await self._go_working(run)
            return
        await self._set_status(SessionStatus.SCAN_QR_CODE, run)
        await self._emit(partial(_report_qr, self._new_qr()), run)
        if self._current(run):
            self._spawn(self._refresh_qr(self._clock.monotonic(), run), self._pairing_tasks)
            if config.pairing == "auto":
                self._schedule_pairing(run)

    async def stop(self) -> None:
        """Cancel every task of the engine; nothing more is reported."""
        await self._halt()

    async def logout(self) -> None:
        """Stop and forget the pairing: a ``restore`` is ignored at the next start."""
        await self._halt()
        self._forgotten = True

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Accept a send (after ``send_latency``); acks and replies follow in the background."""
        self._require_working()
        if message.kind not in self.capabilities:
            raise UnsupportedMessageType(
                f"the simulator engine cannot send {message.kind} messages"
            )
        run, config = self._run, self._config
        delay = config.send_latency.sample(self._rng)
        if delay > 0:
            self.sending += 1
            try:
                await self._clock.sleep(delay)
            finally:
                self.sending -= 1
            self._still_sending(run)
        if config.send_failure_rate > 0 and self._rng.random() < config.send_failure_rate:
            if config.failure_kind == "permanent":
                raise PermanentEngineError(SEND_FAILURE)
            raise TransientEngineError(SEND_FAILURE)
        if len(self._send_tasks) >= MAX_PENDING_SENDS:
            raise TransientEngineError(BUSY)
        rules = await _answering(config, message)
        self._still_sending(run)
        receipt = SendReceipt(f"sim_{ulid()}")
        self.sends += 1
        self.recent_sends.append(message)
        events = self._timeline(message, receipt.engine_message_id, run, rules)
        self._spawn(self._play(events, self._clock.monotonic(), run), self._send_tasks)
        return receipt

    async def request_pairing_code(self, phone: str) -> str:
        """An ``XXXX-XXXX`` code (replacing the last); paired ``pairing_seconds`` later."""
        if self._status is not SessionStatus.SCAN_QR_CODE:
            raise WrongEngineState(f"no pairing code while {self._status}")
        code = "".join(self._rng.choice(_CODE_ALPHABET) for _ in range(8))
        self._cancel_tasks(self._code_tasks)
        self._schedule_pairing(self._run, self._code_tasks)
        return f"{code[:4]}-{code[4:]}"

    # MessageActions --------------------------------------------------------------------------

    async def edit(self, chat: str, engine_message_id: str, text: str) -> None:
        """Edit a sent text (any id this simulator gave)."""
        self._require_working()
        self._require_own(engine_message_id)
        self.actions.append(("edit", chat, engine_message_id, text))

    async def revoke(self, chat: str, engine_message_id: str) -> None:
        """Delete a sent message for everyone."""
        self._require_working()
        self._require_own(engine_message_id)
        self.actions.append(("revoke", chat, engine_message_id))

    async def presence(self, chat: str, state: Presence) -> None:
        """Show ``state`` in ``chat``."""
        self._require_working()
        self.presences[chat] = state
        self.actions.append(("presence", chat, state.value))

    async def reject_call(self, call_id: str) -> None:
        """Reject a call still ringing."""
        self._require_working()
        if self._ringing.pop(call_id, None) is None:
            raise PermanentEngineError(f"no call {call_id!r} is ringing")
        self.actions.append(("reject_call", call_id))

    @staticmethod
    def _require_own(engine_message_id: str) -> None:
        if not engine_message_id.startswith("sim_"):
            raise PermanentEngineError(f"no message {engine_message_id!r} on this phone")

    # simulation hooks ------------------------------------------------------------------------

    async def simulate_call(self, caller: str, video: bool = False) -> str:
        """``caller`` calls now; returns the call's id (reject it while it rings)."""
        self._require_working()
        if self._silent or self._sink is None:
            raise EngineNotReady("the simulated connection is silent")
        call = IncomingCall(f"call_{ulid()}", caller, video, self._now_ms())
        self._ringing[call.call_id] = call
        while len(self._ringing) > RINGING_KEPT:
            self._ringing.pop(next(iter(self._ringing)))
        await self._sink.event(call)
        return call.call_id

    async def simulate_event(self, event: EngineEvent) -> None:
        """Report ``event`` now (an edit or a revoke of a received message, a vote)."""
        self._require_working()
        if self._silent or self._sink is None:
            raise EngineNotReady("the simulated connection is silent")
        await self._sink.event(event)

    async def simulate_scan(self) -> None:
        """The user scans the QR now."""
        if self._status is not SessionStatus.SCAN_QR_CODE:
            raise WrongEngineState(f"no QR code to scan while {self._status}")
        await self._pair(self._run)

    async def inject_inbound(self, sender: str, text: str, kind: str = "text") -> str:
        """Deliver a message from ``sender`` now; returns what the sink stored it as."""
        self._require_working()
        if self._silent or self._sink is None:
            raise EngineNotReady("the simulated connection is silent")
        return await self._sink.message(self._inbound(sender, text, kind))

    async def inject(self, message: InboundMessage) -> str:
        """Deliver ``message`` (any type) now; returns what the sink stored it as."""
        self._require_working()
        if self._silent or self._sink is None:
            raise EngineNotReady("the simulated connection is silent")
        if message.sender_phone is None and (phone := self.sender_phone(message.sender)):
            message = replace(message, sender_phone=phone)
        return await self._sink.message(message)

    async def force_disconnect(self, seconds: float | None = None) -> None:
        """DISCONNECTED now, WORKING again after ``seconds`` (default: ``reconnect_latency``)."""
        if self._status is not SessionStatus.WORKING:
            raise WrongEngineState(f"cannot disconnect while {self._status}")
        if seconds is None:
            seconds = self._config.reconnect_latency.sample(self._rng)
        elif not seconds >= 0:
            raise ValueError("seconds must be >= 0")
        run = self._run
        self._spawn(self._reconnect_at(self._clock.monotonic() + seconds, run))
        await self._set_status(SessionStatus.DISCONNECTED, run)

    def go_silent(self) -> None:
        """A deaf connection: no more heartbeats, acks, replies or status reports."""
        self._silent = True

    # pairing ---------------------------------------------------------------------------------

    async def _refresh_qr(self, shown: float, run: int) -> None:
        refresh = self._config.qr_refresh_seconds
        for attempt in range(1, self._config.qr_attempts):
            await self._sleep_until(shown + attempt * refresh)
            if not self._current(run):
                return
            await self._notify(partial(_report_qr, self._new_qr()), run)
        await self._sleep_until(shown + self._config.qr_attempts * refresh)
        if self._current(run) and self._status is SessionStatus.SCAN_QR_CODE:
            self._cancel_tasks(self._tasks)
            await self._announce(SessionStatus.FAILED, run, QR_TIMEOUT_REASON)

    def _schedule_pairing(self, run: int, *groups: set[asyncio.Task[None]]) -> None:
        """Pair ``pairing_seconds`` from now (the QR scanned, or the code typed, by then)."""
        at = self._clock.monotonic() + self._pairing_seconds()
        self._spawn(self._pair_at(at, run), self._pairing_tasks, *groups)

    async def _pair_at(self, at: float, run: int) -> None:
        await self._sleep_until(at)
        await self._pair(run)

    async def _pair(self, run: int) -> None:
        if not self._current(run) or self._status is not SessionStatus.SCAN_QR_CODE:
            return
        self._status = SessionStatus.STARTING  # the QR is gone: connecting
        await asyncio.gather(*self._cancel_tasks(self._pairing_tasks), return_exceptions=True)
        self._forgotten = False
        account = {"id": self._config.own_number, "pushname": self._config.push_name}
        await self._emit(partial(_report_me, account), run)
        await self._go_working(run)

    def _new_qr(self) -> str:
        ref = "".join(self._rng.choice(_QR_ALPHABET) for _ in range(32))
        key = "".join(self._rng.choice(_QR_ALPHABET) for _ in range(44))
        return f"2@{ref},{key},{self._session_name}"

    # connection ------------------------------------------------------------------------------

    async def _go_working(self, run: int) -> None:
        if not self._current(run):
            return
        now = self._clock.monotonic()
        self._spawn(self._heartbeats(now, run))
        if self._config.disconnect_mean_seconds is not None:
            mean = self._config.disconnect_mean_seconds
            self._spawn(self._random_disconnects(mean, now, run))
        if self._config.call_mean_seconds is not None:
            self._spawn(self._random_calls(self._config.call_mean_seconds, now, run))
        await self._set_status(SessionStatus.WORKING, run)

    async def _heartbeats(self, since: float, run: int) -> None:
        beat = since
        while self._current(run):
            beat += self._config.heartbeat_seconds
            await self._sleep_until(beat)
            if self._status is SessionStatus.WORKING:
                await self._notify(_report_heartbeat, run)

    async def _random_disconnects(self, mean: float, since: float, run: int) -> None:
        while self._current(run):
            await self._sleep_until(since + self._rng.expovariate(1 / mean))
            if self._current(run) and self._status is SessionStatus.WORKING:
                await self._announce(SessionStatus.DISCONNECTED, run)
                latency = self._config.reconnect_latency.sample(self._rng)
                await self._reconnect_at(self._clock.monotonic() + latency, run)
            since = self._clock.monotonic()

    async def _random_calls(self, mean: float, since: float, run: int) -> None:
        caller = self._config.caller or self._echo_contact() or self._config.own_number
        while self._current(run):
            since += self._rng.expovariate(1 / mean)
            await self._sleep_until(since)
            if self._current(run) and self._status is SessionStatus.WORKING and not self._silent:
                try:
                    await self.simulate_call(caller, video=self._rng.random() < 0.5)
                except Exception:
                    log.exception("simulator: reporting a call failed")

    async def _reconnect_at(self, at: float, run: int) -> None:
        await self._sleep_until(at)
        if self._status is SessionStatus.DISCONNECTED:
            await self._announce(SessionStatus.WORKING, run)

    def _require_working(self) -> None:
        if self._status is not SessionStatus.WORKING:
            raise EngineNotReady(f"the simulated phone is not connected ({self._status})")

    def _still_sending(self, run: int) -> None:
        """After a wait inside ``send``: EngineNotReady if the phone stopped or disconnected."""
        if not self._current(run):
            raise EngineNotReady("the simulated phone was stopped")
        self._require_working()

    # what a send sets off --------------------------------------------------------------------

    def _timeline(
        self, message: OutboundMessage, engine_message_id: str, run: int, rules: list[Rule]
    ) -> Timeline:
        """Acks and replies of one send, as (seconds after the send, action), in order."""
        delivered = self._latency(self._config.delivered_latency).sample(self._rng)
        read = self._latency(self._config.read_latency).sample(self._rng)
        ack = partial(self._ack, engine_message_id, run=run)
        reply = partial(self._reply, message.to, run=run)
        events: Timeline = [(delivered, partial(ack, AckStatus.DELIVERED))]
        if message.to == self._echo_contact():
            answer = self._vote if message.poll is not None else self._echo
            events.append((delivered, partial(answer, message, engine_message_id, run=run)))
        events.extend((rule.after_ms / 1000, partial(reply, rule.reply)) for rule in rules)
        events.append((delivered + read, partial(ack, AckStatus.READ)))
        events.sort(key=itemgetter(0))
        return events

    async def _play(self, events: Timeline, sent: float, run: int) -> None:
        for after, action in events:
            if sent + after > self._clock.monotonic():
                await self._sleep_until(sent + after)
            if not self._current(run):
                return
            try:
                await action()
            except Exception:
                log.exception("simulator: reporting an ack or a reply failed")

    async def _ack(self, engine_message_id: str, status: AckStatus, *, run: int) -> None:
        await self._emit(lambda sink: sink.ack(engine_message_id, status), run)

    async def _reply(self, sender: str, text: str, *, run: int) -> None:
        await self._emit(lambda sink: sink.message(self._inbound(sender, text, "text")), run)

    async def _vote(self, sent: OutboundMessage, engine_message_id: str, *, run: int) -> None:
        """The echo contact votes in a poll it got: for the first option."""
        assert sent.poll is not None
        vote = PollVote(engine_message_id, sent.to, sent.poll.options[:1], self._now_ms())
        await self._emit(lambda sink: sink.event(vote), run)

    async def _echo(self, sent: OutboundMessage, _engine_id: str, *, run: int) -> None:
        """The echo contact sends back what it got: same type, text, media, place or card; it
        taps the first button (or row) of an interactive message, and answers a template with
        its name, as a customer's texts (the tap's id in ``raw``, as the Cloud API has it)."""
        if sent.kind in ("interactive", "template"):
            echo = replace(self._inbound(sent.to, "", "text"), **_answer_to(sent))
            await self._emit(lambda sink: sink.message(echo), run)
            return
        echo = replace(
            self._inbound(sent.to, sent.text or "", sent.kind),
            text=sent.text,
            media=sent.media,
            voice=sent.voice,
            location=sent.location,
            contact=sent.contact,
            target=sent.target,
            emoji=sent.emoji,
        )
        await self._emit(lambda sink: sink.message(echo), run)

    def _inbound(self, sender: str, text: str, kind: str) -> InboundMessage:
        return InboundMessage(
            engine_message_id=f"sim_{ulid()}",
            sender=sender,
            recipient=self._config.own_number,
            kind=kind,
            text=text,
            timestamp_ms=self._now_ms(),
            sender_phone=self.sender_phone(sender),
        )

    # settings --------------------------------------------------------------------------------

    @staticmethod
    def _parse(options: dict[str, Any]) -> SimulatorConfig:
        try:
            return parse_config(options)
        except ValidationError as error:
            raise PermanentEngineError(f"invalid simulator config: {error}") from None

    def _pairing_seconds(self) -> float:
        seconds = self._config.pairing_seconds
        return self._defaults.pairing_seconds if seconds is None else seconds

    def _latency(self, latency: Latency | None) -> Latency:
        return fixed(self._defaults.ack_seconds) if latency is None else latency

    def _echo_contact(self) -> str:
        contact = self._config.echo_contact
        return self._defaults.echo_contact if contact is None else contact

    def _now_ms(self) -> int:
        """Wall-clock ms, advancing with the injected clock."""
        return self._epoch_ms + round((self._clock.monotonic() - self._epoch_monotonic) * 1000)

    # reporting and tasks ---------------------------------------------------------------------

    async def _set_status(self, status: SessionStatus, run: int, reason: str | None = None) -> None:
        """Change state and report it (unless the run is over); a failing sink raises."""
        if self._current(run):
            self._status = status
            await self._emit(partial(_report_status, status, reason), run)

    async def _announce(self, status: SessionStatus, run: int, reason: str | None = None) -> None:
        """``_set_status`` for a background task: a failing sink is logged."""
        if self._current(run):
            self._status = status
            await self._notify(partial(_report_status, status, reason), run)

    async def _emit(self, report: Report, run: int) -> None:
        """Tell the sink, unless the run is over or the engine went silent."""
        if self._current(run) and self._sink is not None and not self._silent:
            await report(self._sink)

    async def _notify(self, report: Report, run: int) -> None:
        """``_emit`` for a background task: a failing sink is logged, the task goes on."""
        try:
            await self._emit(report, run)
        except Exception:
            log.exception("simulator: the sink failed")

    async def _sleep_until(self, at: float) -> None:
        """Sleep on the injected clock until ``at`` (a deadline taken when the work was set)."""
        await self._clock.sleep(at - self._clock.monotonic())

    def _current(self, run: int) -> bool:
        """False for a task left over from before a stop (e.g. one that called stop itself)."""
        return run == self._run

    def _spawn(self, work: Coroutine[Any, Any, None], *groups: set[asyncio.Task[None]]) -> None:
        """Run ``work`` as one of the engine's tasks, and of ``groups`` (e.g. pairing tasks)."""
        task = asyncio.create_task(work, name=f"simulator:{self._session_name}")
        for group in (self._tasks, *groups):
            group.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        for group in self._groups:
            group.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("simulator task %s failed", task.get_name(), exc_info=error)

    def _cancel_tasks(self, tasks: set[asyncio.Task[None]]) -> list[asyncio.Task[None]]:
        """Cancel ``tasks`` except the calling one; the cancelled ones are returned."""
        current = asyncio.current_task()
        cancelled = [task for task in tasks if task is not current]
        for task in cancelled:
            task.cancel()
        return cancelled

    async def _halt(self) -> None:
        """End the current run: cancel and await every task (but the caller's own)."""
        self._run += 1
        self._status = SessionStatus.STOPPED
        cancelled = self._cancel_tasks(self._tasks)
        await asyncio.gather(*cancelled, return_exceptions=True)
        for group in self._groups:
            group.difference_update(cancelled)


async def _answering(config: SimulatorConfig, message: OutboundMessage) -> list[Rule]:
    """The rules that answer ``message``, matched on the rules thread (never on the loop)."""
    if not message.text or not config.rules:
        return []
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_rules_thread(), config.replies_to, message.to, message.text)


@cache
def _rules_thread() -> ThreadPoolExecutor:
    """One thread, for the whole process, where every simulator matches its rules.

    RE2 lets go of the GIL while it matches, so the event loop runs on meanwhile, and however
    many sessions match at once they use at most one core.
    """
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="simulator-rules")


def _report_status(status: SessionStatus, reason: str | None, sink: EngineSink) -> Awaitable[None]:
    return sink.status(status, reason)


def _report_qr(raw: str, sink: EngineSink) -> Awaitable[None]:
    return sink.qr(raw)


def _report_me(account: dict[str, Any], sink: EngineSink) -> Awaitable[None]:
    return sink.me(account)


def _report_heartbeat(sink: EngineSink) -> Awaitable[None]:
    return sink.heartbeat()


def _answer_to(sent: OutboundMessage) -> dict[str, Any]:
    """What a customer sends back to an interactive message (a tap) or a template."""
    if sent.template is not None:
        name = str(sent.template.get("name", ""))
        return {"text": name, "raw": {"type": "text", "text": {"body": name}}}
    action = (sent.interactive or {}).get("action", {})
    buttons = action.get("buttons") or []
    if buttons:
        choice, kind = buttons[0]["reply"], "button_reply"
    else:
        choice, kind = action["sections"][0]["rows"][0], "list_reply"
    picked = {"id": choice["id"], "title": choice["title"]}
    return {
        "text": picked["title"],
        "raw": {"type": "interactive", "interactive": {"type": kind, kind: picked}},
    }
