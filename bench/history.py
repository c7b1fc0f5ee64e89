"""The history workload: page latency and server memory with a large stored message history.

For each of two history sizes (``Plan.messages_small``, ``Plan.messages_large``) it

1. starts zapgate once on a fresh data dir and stops it: the server migrates the schema and makes
   the ``default`` tenant, the admin key and the ``default`` session, as in production;
2. seeds that SQLite file directly (stdlib :mod:`sqlite3`, ``executemany`` in big transactions)
   with rows as the app writes them: ``msg_`` + ULID ids whose time is ``created_at``, increasing;
   outbound ``read``/``delivered``/``sent`` with the simulator's ``sim_`` ids or ``failed``;
   inbound ``received``; in the ``default`` session (the one ``/whatsapp/messages`` reads), over
   :data:`CHATS` chats of uneven traffic. No ``events`` rows: the history routes read
   ``messages`` only;
3. starts the server again (under ``Plan.server_prefix``), then for each pattern warms it up and
   reads pages of :data:`PAGE` messages one at a time on a keep-alive connection (``Plan.reads``
   of them): the newest page of ``GET /api/v1/sessions/default/messages`` again and again, a walk
   following its ``next_cursor``, pages at random depths, a walk of the rarest chat (``chat=``),
   a walk of the original ``GET /whatsapp/messages`` (following ``Link``), the newest page
   ``until`` the middle of the history (:data:`UNTIL_READS` reads: each may scan half of it);
   then ``Plan.concurrency`` walks at once. Every page is checked (order, cursor, filters; a whole
   walk must see every stored message), and the server's CPU time per read is taken too: it is
   far less disturbed by other load on the machine than the latencies;
4. reads the server's RSS after that read load.

Each size gets its own fresh data dir rather than growing the small one: both servers then start
from a database built the same way, and only the row count differs between the two RSS figures.
The data dirs are removed after their measurement unless ``Plan.keep_data``.

Targets: page p99 <= :data:`TARGET_P99_MS` with the large history (the worst sequential pattern;
the concurrent walks also wait in the server's queue, so they are reported, not judged) and
RSS(large) <= :data:`TARGET_RSS_RATIO` x RSS(small).
"""

import asyncio
import itertools
import random
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import uvloop

from bench.server import BenchError, Running, cpu_seconds, rss_kb, serve
from bench.sessions import api_client, api_clients, pinned
from bench.targets import zapgate_server
from bench.webhooks import percentile
from zapgate.clock import to_iso
from zapgate.engines.simulator_config import SimulatorConfig

DEFAULT_SMALL = 10_000
DEFAULT_LARGE = 1_000_000
DEFAULT_READS = 2000
DEFAULT_CONCURRENCY = 8
PAGE = 50
"""Messages per page: both routes' default ``limit``."""
WARMUP_READS = 50
"""Unmeasured reads of each pattern before its measured ones."""
UNTIL_READS = 50
UNTIL_WARMUP_READS = 5
"""The ``until`` pattern's reads: each may scan half the history, so fewer of them."""
TARGET_P99_MS = 10.0
TARGET_RSS_RATIO = 1.2
REPO_ROOT = Path(__file__).resolve().parent.parent
DB_FILE = "zapgate.db"
"""The SQLite file zapgate makes in ``ZAPGATE_DATA_DIR`` (no ``ZAPGATE_DATABASE_URL``)."""
TENANT = SESSION = "default"
V1_PATH = f"/api/v1/sessions/{SESSION}/messages"
LEGACY_PATH = "/whatsapp/messages"
OWN_NUMBER = SimulatorConfig().own_number
"""The simulated account's number: the sender of every outbound message."""
CHATS = tuple(f"55119{n:08d}" for n in range(1, 17))
CHAT_WEIGHTS = tuple(range(len(CHATS), 0, -1))
"""Chat ``k`` gets ``16 - k`` shares of the traffic: a busy chat down to a rare one (1/136)."""
STEP_MS = 1000
"""Message ``i`` was created at a random millisecond of the ``i``-th second before now."""
BATCH = 50_000
"""Rows per seeding transaction."""
PROGRESS_EVERY = 200_000
DEEP_CURSORS = 1000
"""Cursors at evenly spread depths, for the random-depth pattern."""
SEED = 20_240_601
TEXTS = (
    "Olá, mundo!",
    "ok",
    "Bom dia! Seu pedido foi enviado e chega amanhã entre 8h e 12h.",
    "Can you send me the invoice for last month? Thanks 🙏",
    "Lembrete: sua consulta está marcada para quinta-feira às 14h30. Responda SIM para "
    "confirmar ou NÃO para remarcar.",
    "👍",
    "where are you?",
    "Segue o código de verificação: 482913. Não compartilhe com ninguém.",
)
OUT_STATUSES = ("read",) * 70 + ("delivered",) * 20 + ("sent",) * 8 + ("failed",) * 2
FAILURE = "PermanentEngineError: simulated send failure"
"""What the outbox records when the simulator refuses a send for good."""
ACK_MS = {"sent": 40, "delivered": 120, "read": 2500, "failed": 30}
"""How long after ``created_at`` each outbound status was reached (``updated_at``)."""
COLUMNS = (
    "id", "tenant_id", "session", "direction", "chat_id", "sender", "recipient", "kind", "text",
    "status", "error", "attempts", "engine_message_id", "created_at", "updated_at",
)  # fmt: skip
INSERT = f"INSERT INTO messages ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = range(120, -1, -10)

Row = tuple[str | int | None, ...]


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[bench] history: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Plan:
    """What to run, where to log, and how to place the processes."""

    api_key: str
    log_dir: Path
    server_prefix: list[str] = field(default_factory=list)
    client_cpu: int | None = None
    messages_small: int = DEFAULT_SMALL
    messages_large: int = DEFAULT_LARGE
    reads: int = DEFAULT_READS
    """Measured page reads per pattern."""
    concurrency: int = DEFAULT_CONCURRENCY
    keep_data: bool = False
    """Keep the seeded data dirs (``history-<n>-data`` in ``log_dir``) for a look with sqlite3."""


@dataclass(frozen=True)
class Seeding:
    """How the database of one run was filled."""

    messages: int
    seeding_s: float
    db_bytes: int
    rarest_chat_messages: int


@dataclass(frozen=True)
class Latency:
    """One read pattern: page latencies and failed or wrong answers."""

    pattern: str
    reads: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    reads_per_s: float
    server_cpu_ms_per_read: float
    """The server's CPU time (all threads) over the measured reads, per read."""
    errors: int
    first_error: str | None
    concurrent: bool = False


@dataclass(frozen=True)
class SizeRun:
    """Figures with one stored history size."""

    seeding: Seeding
    patterns: tuple[Latency, ...]
    rss_ready_kb: int
    rss_after_kb: int
    rss_peak_kb: int

    @property
    def messages(self) -> int:
        """Messages stored."""
        return self.seeding.messages

    @property
    def worst(self) -> Latency | None:
        """The sequential pattern with the worst p99."""
        sequential = [p for p in self.patterns if not p.concurrent]
        return max(sequential, key=lambda p: p.p99_ms) if sequential else None

    @property
    def page_p99_ms(self) -> float:
        """The worst p99 of the sequential patterns."""
        return self.worst.p99_ms if self.worst else 0.0

    @property
    def errors(self) -> int:
        """Failed or wrong page answers."""
        return sum(p.errors for p in self.patterns)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        patterns = {p.pattern: _rounded(asdict(p)) for p in self.patterns}
        return {
            **_rounded(asdict(self.seeding)),
            "patterns": patterns,
            "page_p99_ms": round(self.page_p99_ms, 3),
            "page_p99_pattern": self.worst.pattern if self.worst else None,
            "rss_ready_kb": self.rss_ready_kb,
            "rss_after_kb": self.rss_after_kb,
            "rss_peak_kb": self.rss_peak_kb,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class HistoryResult:
    """Figures of one history run: the small and the large stored history."""

    small: SizeRun
    large: SizeRun

    @property
    def rss_ratio(self) -> float:
        """RSS after the read load, large history over small."""
        return self.large.rss_after_kb / self.small.rss_after_kb

    @property
    def p99_met(self) -> bool:
        """Page p99 with the large history within :data:`TARGET_P99_MS`."""
        return self.large.page_p99_ms <= TARGET_P99_MS

    @property
    def rss_met(self) -> bool:
        """RSS ratio within :data:`TARGET_RSS_RATIO`."""
        return self.rss_ratio <= TARGET_RSS_RATIO

    @property
    def passed(self) -> bool:
        """Both targets met."""
        return self.p99_met and self.rss_met

    @property
    def errors(self) -> int:
        """Failed or wrong page answers in both runs."""
        return self.small.errors + self.large.errors

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view with the targets."""
        return {
            "small": self.small.as_dict(),
            "large": self.large.as_dict(),
            "page_p99_ms": round(self.large.page_p99_ms, 3),
            "target_p99_ms": TARGET_P99_MS,
            "p99_met": self.p99_met,
            "rss_ratio": round(self.rss_ratio, 3),
            "target_rss_ratio": TARGET_RSS_RATIO,
            "rss_met": self.rss_met,
            "page": PAGE,
            "errors": self.errors,
        }


def _rounded(data: dict[str, object]) -> dict[str, object]:
    """Round floats to 3 decimals."""
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in data.items()}


# seeding -----------------------------------------------------------------------------------------


def ulid_at(ms: int, rand: int) -> str:
    """A ULID as :func:`zapgate.ids.ulid` spells it, for time ``ms`` and 80 random bits."""
    value = (ms << 80) | rand
    return "".join([_PAIRS[(value >> shift) & 0x3FF] for shift in _SHIFTS])


def message_rows(count: int, end_ms: int, rng: random.Random) -> Iterator[Row]:
    """``count`` messages of the default session, oldest first, the newest before ``end_ms``."""
    chats = random.Random(SEED).sample(  # a fixed table: one draw per row, no choices() call
        [c for c, w in zip(CHATS, CHAT_WEIGHTS, strict=True) for _ in range(w)],
        sum(CHAT_WEIGHTS),
    )
    start = end_ms - count * STEP_MS
    own_chat = f"{OWN_NUMBER}@c.us"
    for i in range(count):
        ms = start + i * STEP_MS + int(rng.random() * STEP_MS)
        message_id = "msg_" + ulid_at(ms, rng.getrandbits(79))
        chat = chats[int(rng.random() * len(chats))] + "@c.us"
        text = TEXTS[int(rng.random() * len(TEXTS))]
        if rng.random() < 0.5:
            engine_id = "sim_" + ulid_at(ms, rng.getrandbits(79))
            yield (message_id, TENANT, SESSION, "in", chat, chat, own_chat, "text", text,
                   "received", None, 0, engine_id, ms, ms)  # fmt: skip
            continue
        status = OUT_STATUSES[int(rng.random() * len(OUT_STATUSES))]
        updated = ms + ACK_MS[status]
        if status == "failed":
            yield (message_id, TENANT, SESSION, "out", chat, OWN_NUMBER, chat, "text", text,
                   status, FAILURE, 1, None, ms, updated)  # fmt: skip
            continue
        engine_id = "sim_" + ulid_at(ms + 1, rng.getrandbits(79))
        yield (message_id, TENANT, SESSION, "out", chat, OWN_NUMBER, chat, "text", text,
               status, None, 1, engine_id, ms, updated)  # fmt: skip


@dataclass(frozen=True)
class Seeded:
    """What the read patterns need to know about the seeded history."""

    seeding: Seeding
    rarest_chat: str
    deep_cursors: list[str]
    until_ms: int
    """``created_at`` of the message in the middle: half the history is newer."""


def bootstrap(plan: Plan, data_dir: Path, name: str) -> Path:
    """Start and stop zapgate on ``data_dir`` so it makes its schema; the database file."""
    log(f"{name}: making the schema (one server start)")
    server = zapgate_server(data_dir, plan.api_key)
    with serve(server, REPO_ROOT, plan.log_dir / f"{name}-setup.log", plan.server_prefix):
        pass
    database = data_dir / DB_FILE
    if not database.exists():
        raise BenchError(f"no {database} after a server start: is ZAPGATE_DATABASE_URL set?")
    with sqlite3.connect(database) as connection:
        found = connection.execute(
            "SELECT count(*) FROM sessions WHERE tenant_id = ? AND name = ?", (TENANT, SESSION)
        ).fetchone()
    if found != (1,):
        raise BenchError(f"the server did not make the {TENANT}/{SESSION} session in {database}")
    return database


def seed(database: Path, count: int) -> Seeded:
    """Insert ``count`` messages into ``database`` (the server stopped); log progress."""
    rng = random.Random(SEED + count)
    stride = max(1, count // DEEP_CURSORS)
    cursors: list[str] = []
    per_chat = dict.fromkeys(CHATS, 0)
    until_ms = 0
    started = time.monotonic()
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous=OFF")  # a scratch database: speed over safety
        connection.execute("PRAGMA cache_size=-262144")
        rows = message_rows(count, int(time.time() * 1000), rng)
        done = 0
        while done < count:
            batch = list(itertools.islice(rows, BATCH))
            connection.execute("BEGIN")
            connection.executemany(INSERT, batch)
            connection.execute("COMMIT")
            for row in batch[::stride]:
                cursors.append(str(row[0]))
            for row in batch:
                per_chat[str(row[4]).removesuffix("@c.us")] += 1
            if done <= count // 2 < done + len(batch):
                until_ms = int(batch[count // 2 - done][COLUMNS.index("created_at")] or 0)
            before, done = done, done + len(batch)
            if done == count or done // PROGRESS_EVERY > before // PROGRESS_EVERY:
                rate = done / (time.monotonic() - started)
                log(f"seeded {done:,}/{count:,} messages ({rate:,.0f}/s)")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        stored = connection.execute(
            "SELECT count(*) FROM messages WHERE tenant_id = ? AND session = ?", (TENANT, SESSION)
        ).fetchone()[0]
    finally:
        connection.close()
    if stored != count:
        raise BenchError(f"{stored} messages stored in {database}, expected {count}")
    rarest = min(per_chat, key=lambda chat: per_chat[chat])
    seeding = Seeding(
        messages=count,
        seeding_s=time.monotonic() - started,
        db_bytes=database.stat().st_size,
        rarest_chat_messages=per_chat[rarest],
    )
    random.Random(SEED).shuffle(cursors)
    return Seeded(seeding, rarest, cursors, until_ms)


# reading pages -----------------------------------------------------------------------------------


class BadPage(Exception):
    """A page answer that is not what the route promises."""


@dataclass(frozen=True)
class Route:
    """One history route with its filters, and how to ask it for the page after a cursor."""

    path: str
    cursor_param: str
    legacy: bool = False
    chat: str | None = None
    until: str | None = None
    """ISO 8601 instant: only messages created before it."""

    def params(self, cursor: str | None) -> dict[str, str | int]:
        """Query parameters of the page older than ``cursor`` (the newest when None)."""
        params: dict[str, str | int] = {"limit": PAGE}
        if self.chat is not None:
            params["chat"] = self.chat
        if self.until is not None:
            params["until"] = self.until
        if cursor is not None:
            params[self.cursor_param] = cursor
        return params

    def page(self, response: httpx.Response, cursor: str | None) -> tuple[list[str], str | None]:
        """The page's ids and its next cursor; raise :class:`BadPage` if it is wrong."""
        if response.status_code != 200:
            raise BadPage(f"GET {self.path} answered {response.status_code}: {response.text[:200]}")
        body = response.json()
        if self.legacy:
            data, link = body, response.headers.get("link")
            after = parse_qs(urlsplit(link.split(";")[0].strip("<> ")).query) if link else {}
            next_cursor = after.get("before", [None])[0]
        else:
            data, next_cursor = body["data"], body["next_cursor"]
        ids = [str(m["id"]) for m in data]
        # pages by time (``until``) are newest first by (timestamp, id), their cursors
        # "<created_at ms>.<id>"; the seeded history's timestamps rise with its ids
        below = cursor.rpartition(".")[2] if cursor else None
        if any(a <= b for a, b in itertools.pairwise(ids)) or (below and ids and ids[0] >= below):
            raise BadPage(f"GET {self.path}: ids not newest first below the cursor {cursor}")
        if not all(self.matches(m) for m in data):
            raise BadPage(f"GET {self.path}: a message outside the filter: {self.params(None)}")
        expected = ids[-1] if len(ids) == PAGE else None
        continues_after = next_cursor
        if next_cursor is not None and self.until is not None:
            continues_after = next_cursor.rpartition(".")[2]
        if continues_after != expected:
            raise BadPage(f"GET {self.path}: next cursor {next_cursor}, expected {expected}")
        return ids, next_cursor

    def matches(self, message: dict[str, object]) -> bool:
        """Whether ``message`` is one the route's filters let through, in the route's form."""
        return (
            (self.chat is None or message["chat_id"] == f"{self.chat}@c.us")
            and (self.until is None or str(message["timestamp"]) < self.until)
            and (not self.legacy or message["body"] == message["text"])
        )


class Cursors:
    """Where the next read starts: the newest page, a walk, or spread depths."""

    def __init__(self, kind: str, total: int = 0, depths: list[str] | None = None) -> None:
        self.kind = kind
        self.total = total
        self.depths = itertools.cycle(depths or [""])
        self.cursor: str | None = None
        self.seen = 0

    def next(self) -> str | None:
        """The cursor of the next read."""
        if self.kind == "deep":
            return next(self.depths)
        return self.cursor if self.kind == "walk" else None

    def advance(self, ids: list[str], next_cursor: str | None) -> None:
        """Take a page in; a finished walk must have seen all ``total`` messages."""
        if self.kind != "walk":
            return
        self.seen += len(ids)
        self.cursor = next_cursor
        if next_cursor is None:
            seen, self.seen = self.seen, 0
            if seen != self.total:
                raise BadPage(f"a whole walk saw {seen} messages, expected {self.total}")


@dataclass
class Samples:
    """Latencies of one pattern's measured reads, their failures, and the server's CPU time."""

    pid: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    started: float = field(default_factory=time.monotonic)
    cpu_started: float = 0.0

    def __post_init__(self) -> None:
        self.cpu_started = cpu_seconds(self.pid)

    def fail(self, detail: str) -> None:
        """Count a failure, remembering the first one."""
        self.errors += 1
        if self.first_error is None:
            self.first_error = detail

    def figures(self, pattern: str, concurrent: bool = False) -> Latency:
        """Percentiles, rate and server CPU per read since the samples began."""
        values, seconds = self.latencies_ms, time.monotonic() - self.started
        cpu_ms = (cpu_seconds(self.pid) - self.cpu_started) * 1000
        return Latency(
            pattern=pattern,
            reads=len(values),
            p50_ms=percentile(values, 50),
            p99_ms=percentile(values, 99),
            max_ms=max(values, default=0.0),
            reads_per_s=len(values) / seconds if seconds > 0 else 0.0,
            server_cpu_ms_per_read=cpu_ms / len(values) if values else 0.0,
            errors=self.errors,
            first_error=self.first_error,
            concurrent=concurrent,
        )


async def read_page(
    client: httpx.AsyncClient, route: Route, cursors: Cursors, samples: Samples | None
) -> None:
    """One timed page read; checked, and counted in ``samples`` (none: warm-up)."""
    cursor = cursors.next()
    started = time.perf_counter()
    try:
        response = await client.get(route.path, params=route.params(cursor))
    except httpx.HTTPError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        if samples is None:
            raise BenchError(f"warm-up GET {route.path} failed: {exc!r}") from exc
        samples.latencies_ms.append(elapsed)
        samples.fail(f"GET {route.path}: {exc!r}")
        return
    elapsed = (time.perf_counter() - started) * 1000
    try:
        cursors.advance(*route.page(response, cursor))
    except (BadPage, ValueError, KeyError, TypeError) as exc:
        cursors.cursor = None  # start the walk again from the newest page
        if samples is None:
            raise BenchError(f"warm-up: {exc}") from exc
        samples.fail(str(exc))
    if samples is not None:
        samples.latencies_ms.append(elapsed)


async def sequential(
    client: httpx.AsyncClient, pid: int, route: Route, cursors: Cursors, reads: tuple[int, int]
) -> Samples:
    """``reads`` = (warm-up, measured) page reads, one after the other."""
    for _ in range(reads[0]):
        await read_page(client, route, cursors, None)
    samples = Samples(pid)
    for _ in range(reads[1]):
        await read_page(client, route, cursors, samples)
    return samples


async def concurrent(running: Running, plan: Plan, total: int) -> Latency:
    """``plan.reads`` reads of v1 walks, ``plan.concurrency`` walks in flight at once."""
    route = Route(V1_PATH, "cursor")
    issued = 0

    async def walker(client: httpx.AsyncClient, samples: Samples) -> None:
        nonlocal issued
        cursors = Cursors("walk", total)
        while issued < plan.reads:
            issued += 1
            await read_page(client, route, cursors, samples)

    async with api_clients(running.port, plan.api_key, plan.concurrency) as clients:
        shards = itertools.cycle(clients)
        samples = Samples(running.process.pid)
        await asyncio.gather(*(walker(next(shards), samples) for _ in range(plan.concurrency)))
    return samples.figures(f"v1 walk x{plan.concurrency}", concurrent=True)


async def read_load(running: Running, plan: Plan, seeded: Seeded) -> tuple[Latency, ...]:
    """Every pattern, one after the other, against the running server."""
    total = seeded.seeding.messages
    v1 = Route(V1_PATH, "cursor")
    full, few = (WARMUP_READS, plan.reads), (UNTIL_WARMUP_READS, min(plan.reads, UNTIL_READS))
    patterns = (
        ("v1 newest page", v1, Cursors("first"), full),
        ("v1 walk", v1, Cursors("walk", total), full),
        ("v1 random depth", v1, Cursors("deep", depths=seeded.deep_cursors), full),
        ("v1 rarest chat walk", Route(V1_PATH, "cursor", chat=seeded.rarest_chat),
         Cursors("walk", seeded.seeding.rarest_chat_messages), full),
        ("/whatsapp/messages walk", Route(LEGACY_PATH, "before", legacy=True),
         Cursors("walk", total), full),
        ("v1 until mid-history", Route(V1_PATH, "cursor", until=to_iso(seeded.until_ms)),
         Cursors("first"), few),
    )  # fmt: skip
    figures = []
    async with api_client(running.port, plan.api_key) as client:
        for name, route, cursors, reads in patterns:
            samples = await sequential(client, running.process.pid, route, cursors, reads)
            figures.append(samples.figures(name))
            log(f"  {_latency_text(figures[-1])}  {name}")
    figures.append(await concurrent(running, plan, total))
    log(f"  {_latency_text(figures[-1])}  {figures[-1].pattern}")
    return tuple(figures)


def _latency_text(figure: Latency) -> str:
    """``p50 / p99 ms`` of a pattern, for progress lines."""
    errors = f", {figure.errors} errors" if figure.errors else ""
    return (
        f"p50 {figure.p50_ms:6.2f} p99 {figure.p99_ms:6.2f} ms, "
        f"server CPU {figure.server_cpu_ms_per_read:5.2f} ms/read{errors}"
    )


def peak_rss_kb(pid: int) -> int:
    """Peak resident set size of ``pid`` in KiB (``VmHWM``); 0 if unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# run ---------------------------------------------------------------------------------------------


def measure_size(plan: Plan, count: int) -> SizeRun:
    """Seed a fresh data dir with ``count`` messages, start zapgate on it and read pages."""
    name = f"history-{count}"
    data_dir = plan.log_dir / f"{name}-data"
    data_dir.mkdir()
    try:
        database = bootstrap(plan, data_dir, name)
        log(f"{name}: seeding {count:,} messages")
        seeded = seed(database, count)
        mib = seeded.seeding.db_bytes / 2**20
        log(f"{name}: seeded in {seeded.seeding.seeding_s:.1f}s ({mib:.0f} MiB); reading pages")
        server = zapgate_server(data_dir, plan.api_key)
        with (
            serve(server, REPO_ROOT, plan.log_dir / f"{name}.log", plan.server_prefix) as running,
            pinned(plan.client_cpu),
            asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
        ):
            ready = rss_kb(running.process.pid)
            try:
                patterns = runner.run(read_load(running, plan, seeded))
            except httpx.HTTPError as exc:
                raise BenchError(f"request failed: {exc!r}") from exc
            after = rss_kb(running.process.pid)
            peak = peak_rss_kb(running.process.pid)
    finally:
        if not plan.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
    return SizeRun(seeded.seeding, patterns, ready, after, peak)


def run(plan: Plan) -> HistoryResult:
    """Measure the small history, then the large one (each on its own fresh server)."""
    if not 0 < plan.messages_small <= plan.messages_large:
        raise BenchError("need 0 < messages_small <= messages_large")
    small = measure_size(plan, plan.messages_small)
    large = measure_size(plan, plan.messages_large)
    return HistoryResult(small, large)


def section(result: HistoryResult) -> str:
    """The history workload's figures, one per line (small | large history), with the targets."""
    small, large = result.small, result.large
    rows = [
        ("messages stored", f"{small.messages:,} | {large.messages:,} "
         f"({large.seeding.db_bytes / 2**20:.0f} MiB; {PAGE} per page)"),
        ("seeding", f"{small.seeding.seeding_s:.1f} | {large.seeding.seeding_s:.1f} s"),
    ]  # fmt: skip
    for s, b in zip(small.patterns, large.patterns, strict=True):
        value = (
            f"{s.p50_ms:.2f} / {s.p99_ms:.2f} | {b.p50_ms:.2f} / {b.p99_ms:.2f} ms, "
            f"CPU {s.server_cpu_ms_per_read:.1f} | {b.server_cpu_ms_per_read:.1f} ms"
        )
        if b.concurrent:
            value += f", {s.reads_per_s:.0f} | {b.reads_per_s:.0f}/s"
        if s.errors + b.errors:
            value += f", {s.errors + b.errors} ERRORS"
        rows.append((b.pattern, value))
    rss = f"{small.rss_after_kb / 1024:.1f} | {large.rss_after_kb / 1024:.1f} MiB"
    at_ready = f"{small.rss_ready_kb / 1024:.1f} | {large.rss_ready_kb / 1024:.1f}"
    peak = f"{small.rss_peak_kb / 1024:.1f} | {large.rss_peak_kb / 1024:.1f}"
    worst = large.worst.pattern if large.worst else "-"
    rows += [
        ("RSS after the reads", f"{rss} (at ready {at_ready}, peak {peak})"),
        (f"page p99 <= {TARGET_P99_MS:.0f} ms", f"{large.page_p99_ms:.2f} ms ({worst}): "
         + ("met" if result.p99_met else "NOT met")),
        (f"RSS ratio <= {TARGET_RSS_RATIO}x", f"{result.rss_ratio:.2f}x: "
         + ("met" if result.rss_met else "NOT met")),
    ]  # fmt: skip
    lines = (f"  {name:<28} {value}" for name, value in rows)
    note = (
        "  (small | large history; pages: p50 / p99 latency, server CPU per read; the concurrent"
        " walks are not judged)"
    )
    return "\n".join(["history:", *lines, note])
