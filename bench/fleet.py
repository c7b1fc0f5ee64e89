"""What the cluster bench runs on: PostgreSQL databases made for one measurement and dropped
after it, a Redis, and zapgate nodes started together, stopped, or killed with ``kill -9``.

Every cluster starts from a copy of a template database that one node has migrated and seeded
(the default tenant, the admin key, the ``default`` session): nodes started together on an empty
database race to migrate and seed it, and all but one fail. Redis is a private ``redis-server``
on a free port when one is installed (the wake-up channel is global to a Redis server, so a
shared one would mix our signals with whatever else uses it), else ``BENCH_REDIS_URL`` or the
local one.
"""

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import sqlalchemy as sa
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from bench.server import HOST, BenchError, Running, free_port, log_tail, stop, wait_ready
from bench.targets import sessions_server

ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
"""A PostgreSQL database to connect to while creating and dropping the bench's own."""
LOCAL_REDIS = "redis://127.0.0.1:6379/15"
SQL_TIMEOUT_S = 30.0
COPY_ATTEMPTS = 20
"""A template database cannot be copied while a connection to it lingers: tries, 0.25 s apart."""
REDIS_START_S = 10.0
API_TIMEOUT_S = 10.0
SETTLE_TIMEOUT_S = 60.0
POLL_S = 0.1

Json = dict[str, Any]


def where() -> str:
    """The PostgreSQL server as host:port (never the URL: it may hold a password)."""
    url = make_url(ADMIN_URL)
    return f"{url.host}:{url.port or 5432}"


def admin_sql(statement: str) -> None:
    """Run one statement on the admin database, outside a transaction."""

    async def run() -> None:
        engine = create_async_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with asyncio.timeout(SQL_TIMEOUT_S), engine.connect() as connection:
                await connection.execute(sa.text(statement))
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except (OSError, SQLAlchemyError, TimeoutError) as exc:
        raise BenchError(f"PostgreSQL at {where()}: {statement[:60]}...: {exc}") from exc


@dataclass(frozen=True)
class Database:
    """A database of the bench: its name and the URL nodes are given."""

    name: str

    @property
    def url(self) -> str:
        return make_url(ADMIN_URL).set(database=self.name).render_as_string(hide_password=False)


@contextlib.contextmanager
def database(tag: str, template: Database | None = None) -> Iterator[Database]:
    """A new database ``zgbench_<hex>_<tag>`` (a copy of ``template``), dropped WITH (FORCE) at
    the exit (a killed node's connections too)."""
    made = Database(f"zgbench_{secrets.token_hex(4)}_{tag}")
    copy = f' TEMPLATE "{template.name}"' if template else ""
    for attempt in range(COPY_ATTEMPTS):
        try:
            admin_sql(f'CREATE DATABASE "{made.name}"{copy}')
            break
        except BenchError:
            if not template or attempt == COPY_ATTEMPTS - 1:
                raise
            time.sleep(0.25)
    try:
        yield made
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{made.name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def connect(db: Database) -> AsyncIterator[AsyncConnection]:
    """An autocommit connection to ``db`` (each query sees what is committed now)."""
    engine = create_async_engine(db.url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


async def scalars(connection: AsyncConnection, query: str, **params: Any) -> list[Any]:
    """The first column of every row of ``query``."""
    statement = sa.text(query)
    for name, value in params.items():
        if isinstance(value, list | tuple):
            statement = statement.bindparams(sa.bindparam(name, expanding=True))
    return list((await connection.execute(statement, params)).scalars())


def _pings(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis(directory: Path) -> Iterator[str]:
    """A Redis URL for one bench run: a private ``redis-server`` (stopped at the exit) if one is
    installed, else ``BENCH_REDIS_URL``, else the local server's db 15."""
    server = shutil.which("redis-server")
    if server is None or os.environ.get("BENCH_REDIS_URL"):
        yield os.environ.get("BENCH_REDIS_URL", LOCAL_REDIS)
        return
    port = free_port()
    command = [server, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "redis.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=directory, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + REDIS_START_S
        while not _pings(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(
                    f"redis-server did not start:\n{log_tail(directory / 'redis.log')}"
                )
            time.sleep(0.05)
        yield f"redis://{HOST}:{port}/0"
    finally:
        stop(process)


@dataclass(frozen=True)
class Node:
    """A running zapgate node."""

    name: str
    running: Running

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.running.port}"


def node_env(
    db: Database,
    api_key: str,
    data_dir: Path,
    name: str,
    redis_url: str | None = None,
    ttl_s: float | None = None,
) -> dict[str, str]:
    """A node's settings: the sessions workload's server (pacing and per-key limits off,
    instant pairing), no echo replies, on ``db``; in cluster mode with ``redis_url``."""
    env = {
        **sessions_server(data_dir, api_key).env,
        "ZAPGATE_SIMULATOR_ECHO_CONTACT": "",
        "ZAPGATE_DATABASE_URL": db.url,
        "ZAPGATE_NODE_NAME": name,
    }
    if redis_url is not None:
        env["ZAPGATE_REDIS_URL"] = redis_url
    if ttl_s is not None:
        env["ZAPGATE_LEASE_TTL_SECONDS"] = str(ttl_s)
    return env


class Fleet:
    """The nodes started so far, each stopped (SIGTERM, then SIGKILL) at the exit."""

    def __init__(self, repo_root: Path, log_dir: Path) -> None:
        self._root = repo_root
        self._log_dir = log_dir
        self._nodes: list[Node] = []

    def start(self, specs: Sequence[tuple[str, Mapping[str, str]]]) -> list[Node]:
        """Start one node per (name, env) together; return them once each answers ``/ready``."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("ZAPGATE_")}
        started = []
        for name, env in specs:
            data_dir = Path(env["ZAPGATE_DATA_DIR"])
            data_dir.mkdir(parents=True, exist_ok=True)
            port = free_port()
            log_path = self._log_dir / f"{data_dir.name}.log"
            argv = sessions_server(data_dir, "").argv(port)
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    argv, cwd=self._root, env={**inherited, **env}, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            node = Node(name, Running(process, port, log_path))
            self._nodes.append(node)
            started.append(node)
        for node in started:
            wait_ready(node.running, "/ready")
        return started

    def stop(self, node: Node) -> None:
        """A graceful stop (its sessions handed over at once)."""
        stop(node.running.process)

    def kill(self, node: Node) -> None:
        """``kill -9`` the node's process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.running.process.pid, signal.SIGKILL)
        node.running.process.wait(10)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for node in self._nodes:
            stop(node.running.process)


def api(node: Node, api_key: str) -> httpx.Client:
    """A client of ``node`` with the admin key."""
    headers = {"Authorization": f"Bearer {api_key}"}
    return httpx.Client(base_url=node.url, headers=headers, timeout=API_TIMEOUT_S)


def create_sessions(client: httpx.Client, names: Sequence[str], config: Json | None = None) -> None:
    """Create (and start) simulator sessions; one that exists already is left as it is."""
    for name in names:
        made = client.post("/api/v1/sessions", json={"name": name, "config": config or {}})
        if made.status_code not in (201, 409):
            raise BenchError(f"could not create session {name}: {made.status_code} {made.text}")


def sessions(client: httpx.Client) -> dict[str, Json]:
    """Every session by name, as the node asked sees it."""
    listed = client.get("/api/v1/sessions")
    if listed.status_code != 200:
        raise BenchError(f"GET /api/v1/sessions: {listed.status_code} {listed.text[:200]}")
    return {s["name"]: s for s in listed.json()}


def settle(client: httpx.Client, names: Sequence[str], nodes: Sequence[Node]) -> dict[str, str]:
    """Wait until every session is WORKING and the nodes run as many each (give or take one);
    return session -> node. In single-node mode (no ``node`` shown) they are WORKING only."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    wanted = {node.name for node in nodes}
    shown: dict[str, Json] = {}
    while time.monotonic() < deadline:
        shown = sessions(client)
        placement = {name: shown[name]["node"] for name in shown}
        counts = [list(placement.values()).count(node) for node in wanted]
        working = all(shown.get(name, {}).get("status") == "WORKING" for name in names)
        spread = len(wanted) == 1 or (
            set(placement.values()) <= wanted and max(counts) - min(counts) <= 1
        )
        if working and spread:
            return placement
        time.sleep(POLL_S)
    states = {name: (s["status"], s["node"]) for name, s in shown.items()}
    raise BenchError(f"sessions not WORKING and spread after {SETTLE_TIMEOUT_S:.0f} s: {states}")
