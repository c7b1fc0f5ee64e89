"""Failover: ``kill -9`` of the node that runs the most sessions of a two-node cluster.

Ten more sessions join the cluster (``f1``..``f10``: each send takes their simulated phone
20 ms, and the phone echoes every text back) and spread over the nodes; 20 messages per
f-session are accepted (alternately through each node), and at once the node running the most
sessions is killed. Through the survivor ``GET /api/v1/sessions`` is asked every 50 ms (one
request at a time: an answer that takes longer delays the next) until each of the dead node's
sessions shows WORKING on the survivor, with a status written after the kill (its
``updated_at``, also kept: the moment itself, whatever the polling's resolution); meanwhile the
survivor's own sessions must stay WORKING there. ``GET /api/v1/nodes`` is asked alongside, for
when the survivor stops listing the dead node.

Then every accepted message must reach ``sent`` (or ``delivered``, ``read``), and no text may
be echoed twice (a message sent by both nodes).
"""

import asyncio
import contextlib
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

import httpx

from bench.fleet import Database, Fleet, Json, Node, api, connect, create_sessions, scalars, settle
from bench.server import BenchError
from zapgate.clock import to_iso

SESSIONS = tuple(f"f{n}" for n in range(1, 11))
ECHO = "5511900000000"
CONFIG: Json = {"send_latency": {"kind": "fixed", "seconds": 0.02}, "echo_contact": ECHO}
PER_SESSION = 20
POLL_S = 0.05
PAD_S = 15.0
"""How long past two TTLs the survivor is watched before giving up."""
SENT_TIMEOUT_S = 30.0
SENT = ("sent", "delivered", "read")


@dataclass(frozen=True)
class Failover:
    """How long the dead node's sessions took to work again, and what became of the messages."""

    ttl_s: float
    sessions: int
    moved: int
    observed_s: tuple[float, ...]
    """Per moved session: seconds from the kill until the survivor showed it WORKING there."""
    written_s: tuple[float, ...]
    """Per moved session: its WORKING status's ``updated_at`` minus the kill time."""
    node_gone_s: float | None
    slowest_list_s: float
    """The slowest ``GET /api/v1/sessions`` answer of the survivor meanwhile."""
    accepted: int
    reached_sent: int
    failed: int
    echoed_twice: int
    dropped: int
    """The survivor's own sessions seen not WORKING there meanwhile (given up or lost)."""
    dropped_seen: tuple[str, ...]
    """What was seen of each of them first: ``name: status on node at s``."""
    killed_at: str
    """When the node was killed (UTC, ISO 8601), to find the moment in the nodes' logs."""

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.observed_s) if self.observed_s else None

    @property
    def max_s(self) -> float | None:
        return max(self.observed_s) if self.observed_s else None

    @property
    def errors(self) -> int:
        """Sessions not back, messages not sent, texts sent twice (the survivor's own sessions
        interrupted are shown, not counted: the figures stay valid)."""
        lost = self.accepted - self.reached_sent
        return self.moved - len(self.observed_s) + lost + self.echoed_twice

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "median_s": self.median_s, "max_s": self.max_s}


@dataclass
class Watch:
    """What the survivor showed since the kill."""

    observed: dict[str, float]
    written: dict[str, float]
    dropped: dict[str, str] = field(default_factory=dict)
    """The survivor's own sessions seen not WORKING there at some look: what was seen first."""
    gone: float | None = None
    slowest: float = 0.0


def measure(
    fleet: Fleet, nodes: Sequence[Node], db: Database, api_key: str, ttl_s: float
) -> Failover:
    """Add the f-sessions, queue their messages, kill the busiest node, watch the survivor."""
    with api(nodes[0], api_key) as client:
        create_sessions(client, SESSIONS, CONFIG)
        placement = settle(client, SESSIONS, nodes)
    counts = Counter(placement.values())
    victim = max(nodes, key=lambda node: counts[node.name])
    survivor = next(node for node in nodes if node is not victim)
    moved = sorted(name for name, owner in placement.items() if owner == victim.name)
    tag = secrets.token_hex(3)
    ids = asyncio.run(_queue(nodes, api_key, tag))
    kill_ms = time.time_ns() // 1_000_000
    started = time.monotonic()
    fleet.kill(victim)
    watch = asyncio.run(_watch(survivor, api_key, victim.name, moved, ttl_s, kill_ms, started))
    reached, failed, echoed = asyncio.run(_fate(db, ids, tag))
    return Failover(
        ttl_s, len(placement), len(moved),
        tuple(sorted(watch.observed.values())), tuple(sorted(watch.written.values())),
        watch.gone, watch.slowest, len(ids), reached, failed, echoed, len(watch.dropped),
        tuple(f"{name}: {seen}" for name, seen in sorted(watch.dropped.items())), to_iso(kill_ms),
    )  # fmt: skip


async def _queue(nodes: Sequence[Node], api_key: str, tag: str) -> list[str]:
    """``PER_SESSION`` texts to each f-session, alternately through each node; their ids."""
    headers = {"Authorization": f"Bearer {api_key}"}
    clients = [httpx.AsyncClient(base_url=n.url, headers=headers, timeout=30) for n in nodes]

    async def send(number: int, session: str) -> str:
        client = clients[number % len(clients)]
        body = {"to": ECHO, "text": f"fo-{tag}-{session}-{number}"}
        answer = await client.post(f"/api/v1/sessions/{session}/messages", json=body)
        if answer.status_code != 202:
            raise BenchError(f"a send before the kill answered {answer.status_code}: {answer.text}")
        return str(answer.json()["id"])

    try:
        sends = [send(n, s) for s in SESSIONS for n in range(PER_SESSION)]
        return list(await asyncio.gather(*sends))
    finally:
        for client in clients:
            await client.aclose()


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


async def _watch(
    survivor: Node,
    api_key: str,
    victim: str,
    moved: list[str],
    ttl_s: float,
    kill_ms: int,
    started: float,
) -> Watch:
    """Ask the survivor every ``POLL_S`` (one request of each kind at a time) until the moved
    sessions work there and the victim is no longer listed (or two TTLs and ``PAD_S`` passed).
    """
    seen = Watch({}, {})
    headers = {"Authorization": f"Bearer {api_key}"}
    client = httpx.AsyncClient(base_url=survivor.url, headers=headers, timeout=30)

    async def look_sessions() -> None:
        sent = time.monotonic()
        with contextlib.suppress(httpx.HTTPError):
            answer = await client.get("/api/v1/sessions")
            seen.slowest = max(seen.slowest, time.monotonic() - sent)
            at = time.monotonic() - started
            for s in answer.json() if answer.status_code == 200 else []:
                name, written = s["name"], _ms(s["updated_at"])
                back = s["status"] == "WORKING" and s["node"] == survivor.name
                if name not in moved and not back and name not in seen.dropped:
                    seen.dropped[name] = f"{s['status']} on {s['node']} at {at:.1f} s"
                if name in moved and name not in seen.observed and back and written >= kill_ms:
                    seen.observed[name] = at
                    seen.written[name] = (written - kill_ms) / 1000

    async def look_nodes() -> None:
        with contextlib.suppress(httpx.HTTPError):
            answer = await client.get("/api/v1/nodes")
            if answer.status_code != 200:
                return
            if victim not in {n["name"] for n in answer.json()["data"]} and seen.gone is None:
                seen.gone = time.monotonic() - started

    deadline = started + 2 * ttl_s + PAD_S
    due = time.monotonic()
    try:
        while len(seen.observed) < len(moved) or seen.gone is None:
            if time.monotonic() > deadline:
                break
            await asyncio.gather(look_sessions(), look_nodes())
            due = max(due + POLL_S, time.monotonic())
            await asyncio.sleep(due - time.monotonic())
    finally:
        await client.aclose()
    return seen


async def _fate(db: Database, ids: list[str], tag: str) -> tuple[int, int, int]:
    """(messages that reached sent, failed ones, texts echoed more than once), once every
    message is sent or failed (or ``SENT_TIMEOUT_S`` passed)."""
    async with connect(db) as connection:
        deadline = time.monotonic() + SENT_TIMEOUT_S
        while True:
            statuses = Counter(
                await scalars(connection, "SELECT status FROM messages WHERE id IN :ids", ids=ids)
            )
            reached = sum(statuses[status] for status in SENT)
            if reached + statuses["failed"] >= len(ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        echoed = await scalars(
            connection,
            "SELECT count(*) FROM (SELECT text FROM messages WHERE direction = 'in'"
            " AND text LIKE :pattern GROUP BY text HAVING count(*) > 1) AS twice",
            pattern=f"fo-{tag}-%",
        )
    return reached, statuses["failed"], int(echoed[0])
