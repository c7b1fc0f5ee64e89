"""The hostile tenant A of the noisy-neighbour workload: ``python -m bench.hostile``.

Started by :mod:`bench.neighbours` (niced, on the load generator's CPU) with A's key in
``BENCH_HOSTILE_KEY``, it sets up, prints ``ready``, then for ``--duration`` seconds at once:

1. **ReDoS**: a simulator session whose rule is ``^(a+)+$`` (a 422 is recorded as refused), then
   sends of 26 ``a`` and a ``!`` to a number, the first at once, the next at mid-phase;
2. **slow receivers**: :data:`SLOW_HOOKS` subscriptions to a receiver that answers after
   :data:`SLOW_S` and one to a receiver that never answers, fed by sends to the echo contact;
3. **replays**: :data:`REPLAYERS` Socket.IO clients connecting with ``auth.offset = 0``, each
   reconnecting as soon as it has replayed the history (or got ``resync_required``, or gave up).

``--attacks`` picks some of them (default: all). The request flood is wrk, run beside it by
:mod:`bench.neighbours`. Every request is bounded by a timeout, so a stalled
server stalls this process only as long as its duration lasts; what A achieved is written as
JSON to ``--summary``.
"""

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio
import uvloop
from aiohttp import web

from bench.aio import bounded
from bench.server import HOST, free_port
from bench.victim import socket_client

KEY_ENV = "BENCH_HOSTILE_KEY"
REDOS, SLOW, REPLAY, FLOOD = "redos", "slow", "replay", "flood"
ATTACKS = (REDOS, SLOW, REPLAY, FLOOD)
"""Every attack (``flood`` is wrk, run by :mod:`bench.neighbours`, not by this process)."""
READY = "ready"
REDOS_SESSION = "redos"
REDOS_RULE = {"match": "^(a+)+$", "reply": "x"}
REDOS_TEXT = "a" * 26 + "!"
REDOS_TO = "5511955554444"
ECHO_CONTACT = "5511900000000"
EVENT_TYPES = ["message.received", "message.queued", "message.sent", "message.status"]
SLOW_HOOKS = 5
SLOW_S = 3.0
DEAD_S = 3600.0
"""The dead receiver's wait: longer than any client timeout."""
PRODUCER_RATE = 10.0
"""A's sends per second to the echo contact (about five events each) while it attacks."""
PRODUCER_IN_FLIGHT = 20
REPLAYERS = 40
REPLAY_TIMEOUT_S = 15.0
RETRY_PAUSE_S = 0.2
REQUEST_TIMEOUT_S = 10.0
WORKING_TIMEOUT_S = 15.0
POLL_S = 0.1
STOP_TIMEOUT_S = 5.0


Job = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Replays:
    """What the replaying sockets achieved."""

    clients: int = REPLAYERS
    connects: int = 0
    refused: int = 0
    completed: int = 0
    resync_required: int = 0
    timed_out: int = 0
    interrupted: int = 0
    """Replays still running when the phase ended."""
    events: int = 0
    first_refusal: str | None = None


@dataclass
class Summary:
    """Everything A tried and what it got."""

    redos: str = "not tried"
    redos_sends: Counter[str] = field(default_factory=Counter)
    webhooks: Counter[str] = field(default_factory=Counter)
    slow_requests: int = 0
    dead_requests: int = 0
    producer: Counter[str] = field(default_factory=Counter)
    replays: Replays = field(default_factory=Replays)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        return {
            "redos": self.redos,
            "redos_sends": dict(self.redos_sends),
            "webhooks": dict(self.webhooks),
            "slow_requests": self.slow_requests,
            "dead_requests": self.dead_requests,
            "producer": dict(self.producer),
            "replays": vars(self.replays),
        }


async def outcome(request: Any) -> str:
    """The status of an aiohttp request as text, or the failure's class name."""
    try:
        async with request as response:
            await response.read()
            return str(response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__


class Attacker:
    """Tenant A's clients and receivers."""

    def __init__(self, http: aiohttp.ClientSession, port: int, key: str, session: str) -> None:
        self.http = http
        self.port = port
        self.key = key
        self.session = session
        self.summary = Summary()
        self.stop = asyncio.Event()

    # set-up ------------------------------------------------------------------------------------

    async def redos_session(self) -> bool:
        """Create the ReDoS session; True if it was accepted and is WORKING."""
        body = {"name": REDOS_SESSION, "config": {"rules": [REDOS_RULE]}}
        status = await outcome(self.http.post("/api/v1/sessions", json=body))
        self.summary.redos = {"201": "accepted", "422": "refused"}.get(status, f"error {status}")
        return status == "201" and await self.working(REDOS_SESSION)

    async def working(self, name: str) -> bool:
        """Poll a session until WORKING, bounded."""
        deadline = time.monotonic() + WORKING_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                async with self.http.get(f"/api/v1/sessions/{name}") as response:
                    if (await response.json()).get("status") == "WORKING":
                        return True
            await asyncio.sleep(POLL_S)
        self.summary.redos += " (never WORKING)"
        return False

    async def receivers(self, hook_port: int) -> web.AppRunner:
        """The slow and the dead receiver, on ``hook_port``."""

        async def slow(_request: web.Request) -> web.Response:
            self.summary.slow_requests += 1
            await asyncio.sleep(SLOW_S)
            return web.Response(text="ok")

        async def dead(_request: web.Request) -> web.Response:
            self.summary.dead_requests += 1
            await asyncio.sleep(DEAD_S)
            return web.Response(text="too late")

        app = web.Application()
        app.router.add_post("/slow", slow)
        app.router.add_post("/dead", dead)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, HOST, hook_port).start()
        return runner

    async def subscribe(self, hook_port: int) -> None:
        """Point the slow subscriptions and the dead one at the receivers."""
        paths = ["/slow"] * SLOW_HOOKS + ["/dead"]
        for path in paths:
            body = {"url": f"http://{HOST}:{hook_port}{path}", "events": EVENT_TYPES}
            self.summary.webhooks[await outcome(self.http.post("/api/v1/webhooks", json=body))] += 1

    # attacks -----------------------------------------------------------------------------------

    async def redos_sends(self, duration_s: float) -> None:
        """One ReDoS send at once, one at mid-phase."""
        path = f"/api/v1/sessions/{REDOS_SESSION}/messages"
        body = {"to": REDOS_TO, "text": REDOS_TEXT}
        for pause in (0.0, duration_s / 2):
            if await self.stopped_after(pause):
                return
            self.summary.redos_sends[await outcome(self.http.post(path, json=body))] += 1

    async def produce(self) -> None:
        """Sends to the echo contact at :data:`PRODUCER_RATE`, for the slow subscriptions."""
        path = f"/api/v1/sessions/{self.session}/messages"
        body = {"to": ECHO_CONTACT, "text": "noise"}
        slots = asyncio.Semaphore(PRODUCER_IN_FLIGHT)

        async def send() -> None:
            async with slots:
                self.summary.producer[await outcome(self.http.post(path, json=body))] += 1

        tasks: set[asyncio.Task[None]] = set()
        while not await self.stopped_after(1 / PRODUCER_RATE):
            if not slots.locked():
                task = asyncio.create_task(send())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        self.summary.producer["unanswered"] += len(tasks)
        await _cancel_all(tasks)

    async def replay_forever(self, history: int) -> None:
        """One socket: connect at offset 0, take the replay, disconnect, again, until stopped."""
        while not self.stop.is_set():
            await self.replay_once(history)

    async def replay_once(self, history: int) -> None:
        """One connection at offset 0 until ``history`` events arrived (or resync, or timeout)."""
        replays = self.summary.replays
        client = socket_client()
        received = 0
        done = asyncio.Event()

        def on_event(_envelope: object) -> None:
            nonlocal received
            received += 1
            if received >= history:
                done.set()

        def on_resync(_detail: object) -> None:
            replays.resync_required += 1
            done.set()

        client.on("event", on_event)
        client.on("resync_required", on_resync)
        try:
            await bounded(self.connect(client), REQUEST_TIMEOUT_S)
        except (socketio.exceptions.ConnectionError, TimeoutError) as exc:
            replays.refused += 1
            replays.first_refusal = replays.first_refusal or repr(exc)[:200]
            await self.stopped_after(RETRY_PAUSE_S)
            return
        replays.connects += 1
        await first_set((done, self.stop), REPLAY_TIMEOUT_S)
        replays.events += received
        if received >= history:
            replays.completed += 1
        elif not done.is_set():
            replays.interrupted += self.stop.is_set()
            replays.timed_out += not self.stop.is_set()
        with contextlib.suppress(TimeoutError, OSError):
            await bounded(client.disconnect(), STOP_TIMEOUT_S)

    async def connect(self, client: Any) -> None:
        """Connect a Socket.IO client of A asking for a replay from seq 0."""
        await client.connect(
            f"http://{HOST}:{self.port}",
            auth={"token": self.key, "offset": 0},
            transports=["websocket"],
            wait_timeout=REQUEST_TIMEOUT_S,
        )

    async def stopped_after(self, seconds: float) -> bool:
        """Wait ``seconds`` or until stopped; True if stopped."""
        with contextlib.suppress(TimeoutError):
            await bounded(self.stop.wait(), seconds)
        return self.stop.is_set()


async def first_set(events: tuple[asyncio.Event, ...], seconds: float) -> None:
    """Wait until one of ``events`` is set, or ``seconds``."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()


async def _cancel_all(tasks: set[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait for them, bounded."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=STOP_TIMEOUT_S)


def jobs(attacker: Attacker, args: argparse.Namespace) -> list[Job]:
    """The chosen attacks, as coroutine functions to run at once."""
    chosen: list[Job] = []
    if SLOW in args.attacks:
        chosen.append(attacker.produce)
    if REPLAY in args.attacks:
        chosen += [lambda: attacker.replay_forever(args.history)] * REPLAYERS
    if REDOS in args.attacks and attacker.summary.redos == "accepted":
        chosen.append(lambda: attacker.redos_sends(args.duration))
    return chosen


async def attack(attacker: Attacker, args: argparse.Namespace) -> None:
    """The chosen attacks at once for the duration, then stop them (bounded)."""
    tasks = {asyncio.create_task(job()) for job in jobs(attacker, args)}
    await attacker.stopped_after(args.duration)
    attacker.stop.set()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
        await _cancel_all(pending)


async def main_async(args: argparse.Namespace) -> Summary:
    """Set up, say ready, attack, summarise."""
    key = os.environ[KEY_ENV]
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    headers = {"Authorization": f"Bearer {key}"}
    base_url = f"http://{HOST}:{args.port}"
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            aiohttp.ClientSession(base_url, headers=headers, timeout=timeout)
        )
        attacker = Attacker(http, args.port, key, args.session)
        if REDOS in args.attacks:
            await attacker.redos_session()
        if SLOW in args.attacks:
            hook_port = free_port()
            runner = await attacker.receivers(hook_port)
            stack.push_async_callback(_cleanup, runner)
            await attacker.subscribe(hook_port)
        print(READY, flush=True)
        await attack(attacker, args)
    return attacker.summary


async def _cleanup(runner: web.AppRunner) -> None:
    """Stop the receivers, bounded (the dead one's handlers never end by themselves)."""
    with contextlib.suppress(TimeoutError):
        await bounded(runner.cleanup(), STOP_TIMEOUT_S)


def attack_names(text: str) -> frozenset[str]:
    """Parse ``--attacks`` (comma-separated; argparse type)."""
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    unknown = names - set(ATTACKS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown attacks {sorted(unknown)}; known: {ATTACKS}")
    return names


def main() -> None:
    """Parse the arguments, run, write the summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--session", required=True, help="A's session for the echo sends")
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--history", type=int, required=True, help="events a replay must bring")
    parser.add_argument("--summary", type=Path, required=True)
    parser.add_argument("--attacks", type=attack_names, default=frozenset(ATTACKS))
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        summary = runner.run(main_async(args))
    args.summary.write_text(json.dumps(summary.as_dict()))


if __name__ == "__main__":
    main()
