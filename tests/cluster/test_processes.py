"""Three real ``zapgate serve`` processes on one PostgreSQL database and one Redis act as one
service: sessions spread over the nodes, any node takes sends for any session and each message
is sent once, a Socket.IO client on one node gets every event of the others in order, and the
cluster rides out a node killed (``kill -9``), a node paused past its lease (SIGSTOP, SIGCONT),
also in the middle of a commit, and Redis restarted.

"Sent once" is proven two ways. Every message goes to the simulator's echo contact, which
answers each send it receives with one inbound message of the same text: the echoes are in the
database, so they outlive a killed node, and a text echoed twice was sent twice. And each
simulator engine counts its sends (``engine_stats.sends``), which must equal the sends the log
records for its session since that engine started (its last ``STARTING``): a message sent again,
by another node or the same one, is one send too many.

The tests share one cluster; each brings back what an earlier one left broken (a dead node, a
paused one, Redis down) and waits until the sessions are spread evenly and working.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import ADMIN_KEY, AUTH, postgres_reason, require_service
from tests.support.cluster import REDIS_SERVER, Cluster, Node, run_in_a_thread
from tests.support.js_client import JsSocketClient, ensure_node_harness

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

TTL = 3.0
FAILOVER_BOUND = 2 * TTL + 2.0
"""A dead or paused node's sessions work elsewhere within this (its lease runs out within a TTL,
the others look every third of it; the rest is slack for a loaded 2-core machine)."""
STALL_BOUND = TTL + 2.0
"""How long a node stopped inside a commit (holding its tenant's row lock) may hold up the
other nodes' writes of that tenant: the database ends its transaction after the TTL; the rest
is slack for a loaded 2-core machine."""
SETTLE_SECONDS = 10 * TTL
DELIVERY_SECONDS = 30.0
ECHO = "5511900000000"
"""The simulator's echo contact: it answers each message it is sent with the same text."""
NAMED = [f"s{n}" for n in range(6)]
SESSIONS = ["default", *NAMED]
SLOW_SENDS = {"send_latency": {"kind": "fixed", "seconds": 0.25}}
"""The named sessions' phones take 250 ms a send, so a queue is still draining when a node
dies."""
SENT = {"sent", "delivered", "read"}

Json = dict[str, Any]


# the cluster -------------------------------------------------------------------------------------


def services_reason() -> str | None:
    """Why the cluster cannot run here (no PostgreSQL, no redis-server), or None."""
    reason = run_in_a_thread(postgres_reason, 10)
    if reason is None and not os.access(REDIS_SERVER, os.X_OK):
        reason = f"{REDIS_SERVER} is missing"
    return reason


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_service(services_reason())
    with Cluster(tmp_path_factory.mktemp("cluster"), size=3, ttl=TTL) as cluster:
        with httpx.Client(base_url=cluster["a"].url, headers=AUTH, timeout=10) as api:
            for name in NAMED:
                made = api.post("/api/v1/sessions", json={"name": name, "config": SLOW_SENDS})
                assert made.status_code == 201, made.text
        yield cluster


@pytest.fixture
def cluster(shared: Cluster) -> Cluster:
    """The shared cluster with every node and Redis running (an earlier test may have killed,
    paused or stopped one)."""
    shared.revive()
    return shared


def awake(cluster: Cluster) -> list[Node]:
    return [node for node in cluster.alive() if not node.paused]


async def eventually(
    check: Callable[[], Awaitable[bool]], seconds: float, what: str, cluster: Cluster
) -> float:
    """How long until ``check()`` holds (looking every 50 ms), or fail with the nodes' logs."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"{what}: not within {seconds} s\n{cluster.logs()}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def get(node: Node, path: str, **params: Any) -> Any:
    async with node.api() as api:
        try:
            answer = await api.get(path, params=params)
        except httpx.TransportError as error:
            raise AssertionError(f"{node.name} did not answer GET {path}: {error!r}") from None
        assert answer.status_code == 200, f"{node.name} GET {path}: {answer.text}"
        return answer.json()


async def listed_sessions(node: Node) -> dict[str, Json]:
    return {s["name"]: s for s in await get(node, "/api/v1/sessions")}


async def node_names(node: Node) -> list[str]:
    return sorted(n["name"] for n in (await get(node, "/api/v1/nodes"))["data"])


async def settled(cluster: Cluster) -> dict[str, str]:
    """Wait until the live nodes see each other and every session that should run is WORKING
    on one of them, spread evenly (so none moves during the test); returns session -> node."""
    nodes = awake(cluster)
    names = sorted(node.name for node in nodes)
    placement: dict[str, str] = {}

    async def check() -> bool:
        if await node_names(nodes[0]) != names:
            return False
        shown = await listed_sessions(nodes[0])
        running = [s for name, s in shown.items() if name in SESSIONS or s["status"] != "STOPPED"]
        if any(s["status"] != "WORKING" or s["node"] not in names for s in running):
            return False
        counts = dict.fromkeys(names, 0)
        for session in running:
            counts[session["node"]] += 1
        placement.clear()
        placement.update({s["name"]: s["node"] for s in running})
        return set(SESSIONS) <= set(placement) and max(counts.values()) - min(counts.values()) <= 1

    await eventually(check, SETTLE_SECONDS, f"sessions WORKING, spread over {names}", cluster)
    return placement


async def working_on(asked: Node, sessions: list[str], owners: tuple[str, ...]) -> bool:
    """Whether each of ``sessions`` is WORKING on one of ``owners``, as ``asked`` sees it."""
    shown = await listed_sessions(asked)
    return all(shown[s]["status"] == "WORKING" and shown[s]["node"] in owners for s in sessions)


async def engine_sends(cluster: Cluster) -> dict[tuple[str, str], int]:
    """Each running simulator engine's sends, as the node running it counts them: (session,
    node) -> sends (a node that lost a session and does not know it yet is listed too)."""
    found: dict[tuple[str, str], int] = {}
    for node in awake(cluster):
        for name, session in (await listed_sessions(node)).items():
            stats = session.get("engine_stats")
            if session["node"] == node.name and stats is not None:
                found[(name, node.name)] = stats["sends"]
    return found


async def assert_engines_match_the_log(cluster: Cluster) -> None:
    """Each session's engine, on the node that owns it, sent exactly the messages recorded sent
    since it started (its last ``STARTING``): a message sent twice, by two nodes or twice by
    one, is one send too many for some engine. Call it when no send is in flight."""
    await settled(cluster)  # no session on its way to another node
    node = awake(cluster)[0]
    since_start: Counter[str] = Counter()
    for event in await log_after(node, 0):
        session = event["session"]
        if event["type"] == "session.status" and event["payload"]["status"] == "STARTING":
            since_start[session] = 0
        elif event["type"] == "message.sent":
            since_start[session] += 1
    owners = {name: shown["node"] for name, shown in (await listed_sessions(node)).items()}
    counted = {s: n for (s, at), n in (await engine_sends(cluster)).items() if owners[s] == at}
    assert set(SESSIONS) <= set(counted), f"engines not found: {counted}"
    assert counted == {s: since_start[s] for s in counted}, "engine sends != sends recorded"


def assert_recorded_once(logged: list[Json], ids: set[str]) -> None:
    """Each message of ``ids`` has exactly one ``message.sent`` event."""
    counts = Counter(e["payload"]["id"] for e in logged if e["type"] == "message.sent")
    assert {i: counts[i] for i in ids if counts[i] != 1} == {}, "recorded sent n times"


# messages ----------------------------------------------------------------------------------------


async def send(node: Node, session: str, text: str) -> str:
    """Queue ``text`` for the echo contact through ``node``; the message's id."""
    async with node.api() as api:
        try:
            answer = await api.post(
                f"/api/v1/sessions/{session}/messages", json={"to": ECHO, "text": text}
            )
        except httpx.TransportError as error:
            raise AssertionError(f"{node.name} did not answer a send: {error!r}") from None
    assert answer.status_code == 202, f"{node.name} refused a send to {session}: {answer.text}"
    return str(answer.json()["id"])


async def send_many(nodes: list[Node], sessions: list[str], tag: str, each: int) -> dict[str, str]:
    """``each`` messages to every session through every node, all at once; message id ->
    session."""
    texts = [
        (n, s, f"{tag}-{s}-{n.name}-{i}") for n in nodes for s in sessions for i in range(each)
    ]
    ids = await asyncio.gather(*(send(node, session, text) for node, session, text in texts))
    return {i: session for i, (_, session, _) in zip(ids, texts, strict=True)}


async def history(
    node: Node, session: str, direction: str, until: Callable[[list[Json]], bool] | None = None
) -> list[Json]:
    """The messages of ``session`` in ``direction`` (in, out), newest first: all of them, or
    the pages until ``until(found so far)`` holds."""
    found: list[Json] = []
    params: dict[str, Any] = {"direction": direction, "limit": 500}
    while True:
        page = await get(node, f"/api/v1/sessions/{session}/messages", **params)
        found += page["data"]
        if page["next_cursor"] is None or (until is not None and until(found)):
            return found
        params["cursor"] = page["next_cursor"]


async def statuses(node: Node, sent: dict[str, str]) -> dict[str, Json]:
    """The messages of ``sent`` (id -> session) as they are now, by id (newest pages only)."""
    found: dict[str, Json] = {}
    for session in sorted(set(sent.values())):
        wanted = {i for i, s in sent.items() if s == session}
        page = await history(node, session, "out", partial(has_all, wanted))
        found.update({m["id"]: m for m in page if m["id"] in wanted})
    return found


def has_all(ids: set[str], found: list[Json]) -> bool:
    return ids <= {m["id"] for m in found}


async def until_status(
    cluster: Cluster, node: Node, sent: dict[str, str], wanted: set[str]
) -> dict[str, Json]:
    """Wait until every message of ``sent`` has a status in ``wanted``; the messages."""
    found: dict[str, Json] = {}

    async def check() -> bool:
        found.update(await statuses(node, sent))
        return all(found.get(i, {}).get("status") in wanted for i in sent)

    try:
        await eventually(check, DELIVERY_SECONDS, f"{len(sent)} messages {wanted}", cluster)
    except AssertionError:
        late = Counter(found.get(i, {}).get("status") for i in sent)
        raise AssertionError(f"message statuses: {dict(late)}\n{cluster.logs()}") from None
    return found


async def echoes(node: Node, sessions: set[str]) -> Counter[str]:
    """How many times the echo contact answered each text (once a send it received)."""
    counted: Counter[str] = Counter()
    for session in sorted(sessions):
        counted.update(m["text"] for m in await history(node, session, "in") if m["from"] == ECHO)
    return counted


def assert_not_twice(echoed: Counter[str], *tags: str) -> None:
    """No text of this test (starting with one of ``tags``) reached the phone twice."""
    twice = {text: n for text, n in echoed.items() if n > 1 and text.startswith(tags)}
    assert not twice, f"sent more than once (echoed n times): {twice}"


def assert_sent_once(texts: list[str], echoed: Counter[str]) -> None:
    """Each of ``texts`` reached the phone once (when no session moves meanwhile: a simulated
    phone that stops drops the acks and echoes still due)."""
    twice = {text: echoed[text] for text in texts if echoed[text] > 1}
    assert not twice, f"sent more than once (echoed n times): {twice}"
    never = [text for text in texts if echoed[text] == 0]
    assert not never, f"never reached the phone: {never[:10]}"


# events ------------------------------------------------------------------------------------------


async def log_after(node: Node, after: int) -> list[Json]:
    """Every event of the tenant after seq ``after``, read from the database through ``node``."""
    found: list[Json] = []
    while True:
        page = await get(node, "/api/v1/events", after=after, limit=1000)
        if not page["data"]:
            return found
        found += page["data"]
        after = page["next_after"]


async def head(node: Node) -> int:
    """The tenant's newest seq."""
    found = await log_after(node, 0)
    return int(found[-1]["seq"]) if found else 0


def received(client: JsSocketClient) -> list[Json]:
    """The envelopes a JS client got as ``event``, in arrival order."""
    return [
        line["args"][0]
        for line in client.lines
        if line.get("kind") == "event" and line.get("name") == "event"
    ]


async def connected(client: JsSocketClient) -> None:
    line = await client.wait_for(lambda line: line["kind"] in ("connect", "connect_error"), 20)
    assert line["kind"] == "connect", line


async def until_seen(client: JsSocketClient, logged: list[Json], cluster: Cluster) -> None:
    """Wait until the client got the last of ``logged`` (it ended, or it did not: fail, naming
    the first events it lacks)."""
    last = logged[-1]["seq"]

    async def check() -> bool:
        assert client.process.returncode is None, f"the JS client ended: {client.lines[-5:]}"
        return any(envelope["seq"] >= last for envelope in received(client))

    try:
        await eventually(check, DELIVERY_SECONDS, f"the JS client reaching seq {last}", cluster)
    except AssertionError:
        got = {envelope["seq"] for envelope in received(client)}
        missing = [(e["seq"], e["type"], e["session"]) for e in logged if e["seq"] not in got]
        raise AssertionError(
            f"the JS client on {client.url} got {len(got)} of {len(logged)} events; the first "
            f"it lacks: {missing[:5]}"
        ) from None


def assert_every_event_in_order(got: list[Json], logged: list[Json], after: int) -> None:
    """``got`` is the log after ``after``, in seq order, with no gap and no double."""
    seqs = [envelope["seq"] for envelope in got]
    expected = list(range(after + 1, after + 1 + len(seqs)))
    if seqs != expected:
        first = next(i for i, (s, e) in enumerate(zip(seqs, expected, strict=True)) if s != e)
        raise AssertionError(
            f"events out of order, missing or repeated from seq {expected[first]}: "
            f"got {seqs[max(first - 3, 0) : first + 7]}"
        )
    assert len(got) >= len(logged), f"got {len(got)} events, the log has {len(logged)}"
    pairs = [(e["seq"], e["id"], e["type"]) for e in got[: len(logged)]]
    assert pairs == [(e["seq"], e["id"], e["type"]) for e in logged]


class LongPoll:
    """A long-poll reader of ``GET /api/v1/events`` on one node, in the background."""

    def __init__(self, node: Node, after: int) -> None:
        self.node = node
        self.after = after
        self.events: list[Json] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self.node.api(timeout=30) as api:
            while True:
                try:
                    page = await api.get(
                        "/api/v1/events", params={"after": self.after, "wait": 2, "limit": 1000}
                    )
                except httpx.TransportError:  # asked again: the cursor is where it was
                    await asyncio.sleep(0.1)
                    continue
                assert page.status_code == 200, page.text
                self.events += page.json()["data"]
                self.after = page.json()["next_after"]

    async def __aenter__(self) -> LongPoll:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
async def js() -> AsyncIterator[Callable[..., JsSocketClient]]:
    """Makes JS ``socket.io-client``s (tenant-wide, from an offset), killed at the end."""
    require_service(ensure_node_harness())
    made: list[JsSocketClient] = []

    def make(node: Node, offset: int) -> JsSocketClient:
        client = JsSocketClient(
            node.url, auth={"token": ADMIN_KEY, "offset": offset}, timeout_ms=180_000
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.kill()


# the tests ---------------------------------------------------------------------------------------


async def test_sessions_are_spread_over_the_three_nodes(cluster: Cluster) -> None:
    placement = await settled(cluster)
    assert sorted(placement) == SESSIONS
    assert set(placement.values()) == {"a", "b", "c"}, f"a node runs nothing: {placement}"
    for node in cluster.nodes:
        assert await node_names(node) == ["a", "b", "c"]
        shown = await listed_sessions(node)
        assert {name: s["node"] for name, s in shown.items()} == placement, (
            f"node {node.name} names other owners"
        )

    async def counted() -> bool:  # each node counts its sessions at its next heartbeat
        listed = (await get(cluster["c"], "/api/v1/nodes"))["data"]
        return {n["name"]: n["sessions"] for n in listed} == Counter(placement.values())

    await eventually(counted, TTL, "the nodes counting their sessions", cluster)


@pytest.mark.node
async def test_sends_through_every_node_are_sent_once_and_a_client_on_c_gets_every_event(
    cluster: Cluster, js: Callable[..., JsSocketClient]
) -> None:
    placement = await settled(cluster)
    c = cluster["c"]
    start = await head(c)
    async with js(c, start) as client:
        await connected(client)
        sent = await send_many(cluster.nodes, SESSIONS, "every", each=2)
        await until_status(cluster, cluster["a"], sent, {"read"})
        texts = [f"every-{s}-{n.name}-{i}" for n in cluster.nodes for s in SESSIONS for i in (0, 1)]
        assert_sent_once(texts, await echoes(c, set(SESSIONS)))
        await assert_engines_match_the_log(cluster)
        logged = await log_after(c, start)
        assert_recorded_once(logged, set(sent))
        await until_seen(client, logged, cluster)
    assert_every_event_in_order(received(client), logged, start)
    elsewhere = {e["session"] for e in received(client) if placement.get(e["session"]) != "c"}
    assert {s for s in SESSIONS if placement[s] in ("a", "b")} <= elsewhere


async def test_lifecycle_and_simulator_calls_through_any_node_act_on_the_owner(
    cluster: Cluster,
) -> None:
    await settled(cluster)
    a = cluster["a"]
    async with a.api() as api:
        made = await api.post(
            "/api/v1/sessions", json={"name": "lifecycle", "config": {"pairing": "manual"}}
        )
        assert made.status_code == 201, made.text
    try:
        await lifecycle_through_a_non_owner(cluster)
    finally:
        async with a.api() as api:
            await api.delete("/api/v1/sessions/lifecycle")


async def lifecycle_through_a_non_owner(cluster: Cluster) -> None:
    a = cluster["a"]

    async def status() -> tuple[str, str | None]:
        shown = await get(a, "/api/v1/sessions/lifecycle")
        return shown["status"], shown["node"]

    async def showing(wanted: str) -> bool:
        now, node = await status()
        return now == wanted and (node is not None or wanted == "STOPPED")

    await eventually(lambda: showing("SCAN_QR_CODE"), SETTLE_SECONDS, "a QR to scan", cluster)
    owner = cluster[str((await status())[1])]
    other = next(node for node in cluster.nodes if node is not owner)
    async with owner.api() as at_owner, other.api() as elsewhere:
        shown = await at_owner.get("/api/v1/sessions/lifecycle/qr")
        assert shown.status_code == 200, shown.text
        qr = shown.json()["qr"]
        routed = await elsewhere.get("/api/v1/sessions/lifecycle/qr")
        assert routed.status_code == 200, f"QR through {other.name}: {routed.text}"
        assert routed.json()["qr"] == qr
        scanned = await elsewhere.post("/api/v1/sessions/lifecycle/simulate/scan")
        assert scanned.status_code == 204, f"scan through {other.name}: {scanned.text}"
        await eventually(lambda: showing("WORKING"), SETTLE_SECONDS, "paired", cluster)
        inbound = {"from": "5511988887777", "text": "hello"}
        direct = await at_owner.post("/api/v1/sessions/lifecycle/simulate/inbound", json=inbound)
        assert direct.status_code == 201, direct.text
        routed = await elsewhere.post("/api/v1/sessions/lifecycle/simulate/inbound", json=inbound)
        assert routed.status_code == 201, f"inbound through {other.name}: {routed.text}"
        same = ("session", "direction", "from", "to", "type", "text", "status")
        assert {k: routed.json()[k] for k in same} == {k: direct.json()[k] for k in same}
        assert routed.json()["id"] != direct.json()["id"]
        start = await head(a)
        restarted = await elsewhere.post("/api/v1/sessions/lifecycle/restart")
        assert restarted.status_code == 200, f"restart through {other.name}: {restarted.text}"

        async def restarted_by_its_owner() -> bool:
            events = await log_after(a, start)
            return any(
                e["session"] == "lifecycle"
                and e["type"] == "session.status"
                and e["payload"]["status"] == "STARTING"
                for e in events
            )

        await eventually(restarted_by_its_owner, SETTLE_SECONDS, "restarted", cluster)
        await eventually(lambda: showing("WORKING"), SETTLE_SECONDS, "WORKING again", cluster)
        stopped = await elsewhere.post("/api/v1/sessions/lifecycle/stop")
        assert stopped.status_code == 200, f"stop through {other.name}: {stopped.text}"
        await eventually(lambda: showing("STOPPED"), SETTLE_SECONDS, "stopped", cluster)
        started = await elsewhere.post("/api/v1/sessions/lifecycle/start")
        assert started.status_code == 200, f"start through {other.name}: {started.text}"
        await eventually(lambda: showing("WORKING"), SETTLE_SECONDS, "started", cluster)

    async def each_once() -> bool:
        """Every session runs on one node: none on two (a restart started a second engine)."""
        running = sum(n["sessions"] for n in (await get(a, "/api/v1/nodes"))["data"])
        return bool(running == len(SESSIONS) + 1)

    await eventually(each_once, TTL, "each session running on one node", cluster)


async def test_a_node_paused_past_its_lease_does_not_act_on_what_it_lost(
    cluster: Cluster,
) -> None:
    placement = await settled(cluster)
    a, b, c = cluster["a"], cluster["b"], cluster["c"]
    lost = sorted(s for s, node in placement.items() if node == "b")
    before = await send_many([b], lost, "before-pause", each=2)
    await until_status(cluster, b, before, {"read"})
    stale = {s: sends for (s, node), sends in (await engine_sends(cluster)).items() if node == "b"}
    assert set(stale) == set(lost)
    assert all(sends >= 2 for sends in stale.values())

    cluster.pause("b")
    paused_at = time.monotonic()

    took = await eventually(
        lambda: working_on(a, lost, ("a", "c")),
        FAILOVER_BOUND * 2,
        "b's sessions working elsewhere",
        cluster,
    )
    print(f"paused node's sessions WORKING elsewhere {took:.2f} s after SIGSTOP")
    assert took <= FAILOVER_BOUND
    during = await send_many([a, c], lost, "paused", each=2)
    await until_status(cluster, a, during, {"read"})

    async def let_go() -> bool:
        """b runs none of its old engines (a session given back to b later, under a new lease,
        runs a new one); until then they send nothing."""
        mine, theirs = await listed_sessions(b), await listed_sessions(a)
        old = [s for s in lost if mine[s]["node"] == "b" and theirs[s]["node"] != "b"]
        for s in old:
            sends = mine[s]["engine_stats"]["sends"]
            assert sends == stale[s], f"b's old engine of {s} sent {sends - stale[s]} more"
        return not old

    cluster.resume("b")
    resumed_at = time.monotonic()
    print(f"b resumed after {resumed_at - paused_at:.2f} s")
    watch = asyncio.create_task(
        eventually(let_go, FAILOVER_BOUND, "b stopping the sessions it lost", cluster)
    )
    try:
        resumed = await send_many([b], lost, "resumed", each=2)  # b must leave them to the owners
        await until_status(cluster, a, resumed, SENT)
        print(f"b let its old engines go {await watch:.2f} s after SIGCONT")
    finally:
        watch.cancel()
    texts = [
        f"{tag}-{s}-{n.name}-{i}"
        for tag, nodes in (("before-pause", [b]), ("paused", [a, c]))
        for n in nodes
        for s in lost
        for i in (0, 1)
    ]
    echoed = await echoes(a, set(lost))
    assert_sent_once(texts, echoed)
    assert_not_twice(echoed, "resumed-")  # these may move with a rebalance: not all echo back
    await assert_engines_match_the_log(cluster)


@pytest.mark.node
async def test_kill_9_of_a_node_loses_nothing_and_sends_nothing_twice(
    cluster: Cluster, js: Callable[..., JsSocketClient]
) -> None:
    """What a sent before it died is told by the log: its ``message.sent`` events are older than
    the kill (the others' are younger than the takeover, seconds later). The new owners send
    exactly the rest: each engine's count equals the sends recorded since it started (a's count
    died with a), and no text reaches the echo contact twice."""
    placement = await settled(cluster)
    a, b, c = cluster["a"], cluster["b"], cluster["c"]
    lost = sorted(s for s, node in placement.items() if node == "a")
    kept = sorted(s for s in SESSIONS if s not in lost)
    start = await head(c)
    async with js(c, start) as client:
        await connected(client)
        sent = await send_many([a], SESSIONS, "to-a", each=1)
        await until_status(cluster, b, sent, SENT)
        burst = asyncio.create_task(send_many([b, c], lost, "burst", each=6))
        await eventually(lambda: sending(b, lost, "burst-"), DELIVERY_SECONDS, "a sending", cluster)
        cluster.kill("a")
        killed_at, killed_ms = time.monotonic(), time.time() * 1000
        flowing = await burst
        sent |= flowing
        sent |= await send_many([b, c], kept, "burst", each=1)
        await eventually(
            lambda: working_on(b, lost, ("b", "c")),
            FAILOVER_BOUND * 2,
            "a's sessions working elsewhere",
            cluster,
        )
        took = time.monotonic() - killed_at
        print(f"killed node's sessions WORKING elsewhere {took:.2f} s after kill -9")
        assert took <= FAILOVER_BOUND

        async def a_gone() -> bool:
            return await node_names(b) == ["b", "c"]

        await eventually(a_gone, TTL, "a gone from the nodes", cluster)
        await until_status(cluster, b, sent, SENT)
        logged = await log_after(c, start)
        by_a = {
            e["payload"]["id"]
            for e in logged
            if e["type"] == "message.sent" and e["session"] in lost and at_ms(e) < killed_ms
        }
        queued = {
            e["payload"]["id"]
            for e in logged
            if e["type"] == "message.queued" and e["session"] in lost and at_ms(e) < killed_ms
        }
        assert queued - by_a, "a had sent all it had when it died"
        assert by_a & set(flowing), "a died before it sent any of the burst"
        rest = {i: s for i, s in sent.items() if i not in by_a}
        await until_status(cluster, b, rest, SENT)
        await assert_engines_match_the_log(cluster)
        assert_not_twice(await echoes(b, set(SESSIONS)), "to-a-", "burst-", "orphan-")
        logged = await log_after(c, start)
        assert_recorded_once(logged, set(sent))
        await until_seen(client, logged, cluster)
    assert_every_event_in_order(received(client), logged, start)


async def sending(node: Node, sessions: list[str], prefix: str) -> bool:
    """Whether a message of ``sessions`` whose text starts with ``prefix`` was sent."""
    for session in sessions:
        page = await get(node, f"/api/v1/sessions/{session}/messages", direction="out", limit=50)
        if any(m["text"].startswith(prefix) and m["status"] in SENT for m in page["data"]):
            return True
    return False


def at_ms(event: Json) -> float:
    """When the event was made (its node's clock: these nodes share this machine's)."""
    return datetime.fromisoformat(event["timestamp"]).timestamp() * 1000


@pytest.mark.node
async def test_redis_restarted_mid_run_loses_no_event(
    cluster: Cluster, js: Callable[..., JsSocketClient]
) -> None:
    await settled(cluster)
    b, c = cluster["b"], cluster["c"]
    start = await head(c)
    async with js(c, start) as client, LongPoll(b, start) as poll:
        await connected(client)
        sent = await send_many(cluster.nodes, SESSIONS, "redis-up", each=1)
        cluster.redis.stop()
        sent |= await send_many(cluster.nodes, SESSIONS, "redis-down", each=1)
        await until_status(cluster, cluster["a"], sent, {"read"})
        await until_seen(client, await log_after(c, start), cluster)  # polled from the log
        cluster.redis.start()
        sent |= await send_many(cluster.nodes, SESSIONS, "redis-back", each=1)
        await until_status(cluster, cluster["a"], sent, {"read"})
        texts = [
            f"{tag}-{s}-{n.name}-0"
            for tag in ("redis-up", "redis-down", "redis-back")
            for n in cluster.nodes
            for s in SESSIONS
        ]
        assert_sent_once(texts, await echoes(c, set(SESSIONS)))
        await assert_engines_match_the_log(cluster)
        logged = await log_after(c, start)
        assert_recorded_once(logged, set(sent))
        last = int(logged[-1]["seq"])
        await until_seen(client, logged, cluster)

        async def polled() -> bool:
            return poll.after >= last

        await eventually(polled, DELIVERY_SECONDS, f"the long-poll on b reaching {last}", cluster)
    assert_every_event_in_order(poll.events, logged, start)
    assert_every_event_in_order(received(client), logged, start)


async def test_a_node_paused_inside_a_commit_holds_up_no_one(cluster: Cluster) -> None:
    """A node can stop at any moment, also inside a commit that holds its tenant's seq (each
    commit with events locks the tenant's row until it ends): the others must still accept and
    send the tenant's messages, and take the stopped node's sessions over, within the bound."""
    placement = await settled(cluster)
    a, b = cluster["a"], cluster["b"]
    lost = sorted(s for s, node in placement.items() if node == "b")
    pumped: dict[str, str] = {}
    pump = asyncio.create_task(keep_sending(b, lost, pumped))
    engine = create_async_engine(cluster.database.url)
    try:
        await eventually(
            lambda: paused_inside_a_commit(cluster, engine),
            2 * SETTLE_SECONDS,  # a search: each try stops b at a random moment
            "b paused inside a commit",
            cluster,
        )
        paused_at = time.monotonic()
        sent = await send_many([a], SESSIONS, "while-b-holds", each=1)
        # the sessions b did not run: held up only until the database ends b's transaction
        others = {m: session for m, session in sent.items() if session not in lost}
        await until_status(cluster, a, others, SENT)
        took = time.monotonic() - paused_at
        print(f"with b paused inside a commit, sends through a all sent after {took:.2f} s")
        assert took <= STALL_BOUND
        # b's: once another node runs them, after the backlog b had queued (pumped) is sent
        await until_status(cluster, a, sent, SENT)
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        cluster.resume("b")
        await engine.dispose()
    await until_status(cluster, a, pumped, SENT)
    async with a.api() as api:  # new engines: a message b sent before it stopped may be sent
        for session in SESSIONS:  # again (at least once), and must not count against later tests
            assert (await api.post(f"/api/v1/sessions/{session}/restart")).status_code == 200


PUMPED_SENDS = 8
"""Sends the pump queues on each of b's sessions; past them it only records inbound messages.
Each send takes its phone 250 ms, so an unbounded pump left a backlog that grew with every try
at pausing b inside a commit (hundreds of sends on a slow try) and outlasted the wait for it."""


async def keep_sending(node: Node, sessions: list[str], sent: dict[str, str]) -> None:
    """Commit through ``node`` on ``sessions`` until cancelled, four requests at a time so that
    it is inside a commit most of the time (a node paused meanwhile answers later):
    ``PUMPED_SENDS`` sends to each session (a backlog for the next owner), then inbound
    messages, which commit as often without adding to it."""
    numbers = itertools.count()

    async def pump(api: httpx.AsyncClient) -> None:
        for n in numbers:
            session = sessions[n % len(sessions)]
            if n < PUMPED_SENDS * len(sessions):
                answer = await api.post(
                    f"/api/v1/sessions/{session}/messages", json={"to": ECHO, "text": f"pump-{n}"}
                )
                assert answer.status_code == 202, answer.text
                sent[answer.json()["id"]] = session
            else:
                answer = await api.post(
                    f"/api/v1/sessions/{session}/simulate/inbound",
                    json={"from": "5511988887777", "text": f"pump-{n}"},
                )
                assert answer.status_code == 201, answer.text

    async with node.api(timeout=60) as api:
        await asyncio.gather(*(pump(api) for _ in range(4)))


STALLED = sa.text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND state = 'idle in transaction' AND backend_xid IS NOT NULL"
    " AND now() - state_change > interval '200 milliseconds'"
)
"""Transactions that wrote and have waited 200 ms for their client: a stopped node's (a running
one finishes its commit in milliseconds)."""
ROW_LOCKED = sa.text("SELECT id FROM tenants FOR NO KEY UPDATE NOWAIT")
"""Fails (lock_not_available) while a transaction has updated a tenant's row, as a commit that
took the tenant's seqs has until it ends (a row that only references a tenant takes a weaker
lock, which this one does not wait for, and which holds up no commit either)."""


async def holds_a_tenant_row(engine: AsyncEngine) -> bool:
    """Whether a stalled transaction holds a tenant's row (the seq lock every commit with events
    takes), checked twice 100 ms apart so that a running node's commit is not mistaken for it."""
    for _ in range(2):
        async with engine.connect() as connection:
            if not (await connection.execute(STALLED)).scalar_one():
                return False
            await connection.rollback()
            try:
                async with connection.begin():
                    await connection.execute(ROW_LOCKED)
                    return False
            except sa.exc.DBAPIError as error:
                if "55P03" not in repr(error.orig) and "could not obtain lock" not in str(error):
                    raise
        await asyncio.sleep(0.1)
    return True


async def paused_inside_a_commit(cluster: Cluster, engine: AsyncEngine) -> bool:
    """Pause b at some moment; True if it stopped inside a commit, else let it run again."""
    cluster.resume("b")
    await asyncio.sleep(random.uniform(0.05, 0.3))  # a moment to stop at, not a wait
    cluster.pause("b")
    await asyncio.sleep(0.25)  # past STALLED's 200 ms
    return await holds_a_tenant_row(engine)
