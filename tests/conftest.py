"""Fixtures: real SQLite files, the machine's PostgreSQL, a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import faulthandler
import io
import os
import secrets
import socket
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.support.receiver import Receiver
from zapgate.app import create_asgi, start, stop
from zapgate.config import Settings
from zapgate.db.database import create_engine
from zapgate.http.hotpath import HotPath, protocol
from zapgate.realtime.direct import UVICORN_OPTIONS
from zapgate.services import Services, build_services

IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = os.environ.get("ZAPGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("ZAPGATE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
NATS_URL = os.environ.get("ZAPGATE_TEST_NATS_URL", "nats://127.0.0.1:4222")
POSTGRES_URL = os.environ.get(
    "ZAPGATE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
ADMIN_KEY = "zg_testadmin0001_" + "k" * 32
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


TEARDOWN_SECONDS = 20.0
WATCHDOG_SECONDS = 300


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """End the run, with every thread's stack, if one test (setup to teardown) outlives this.

    pytest-timeout and pytest's faulthandler both stop their timers as soon as a test fails
    (``pytest_exception_interact``), so a teardown that hangs after a failure (a task ignoring
    its cancel) used to stall the whole run until CI gave up. This timer only we stop.
    """
    finished = threading.Event()

    def watch() -> None:
        if not finished.wait(WATCHDOG_SECONDS):
            capture = item.config.pluginmanager.getplugin("capturemanager")
            if capture is not None:
                capture.suspend_global_capture(in_=True)  # so that this reaches the real stderr
            sys.stderr.write(f"\n+++ {item.nodeid} outlived {WATCHDOG_SECONDS} s +++\n")
            sys.stderr.flush()
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            os._exit(3)

    threading.Thread(target=watch, name="test-watchdog", daemon=True).start()
    try:
        yield
    finally:
        finished.set()


async def bounded_teardown(work: Awaitable[object], what: str) -> None:
    """Finish a teardown step, or fail after TEARDOWN_SECONDS showing where every task waits.

    A stop that hangs is a bug (one was a cancellation dropped by ``asyncio.wait_for``); this
    makes it a failure naming the culprit, not a stalled run or a warning nobody reads.
    """
    try:
        async with asyncio.timeout(TEARDOWN_SECONDS):
            await work
    except TimeoutError:
        buffer = io.StringIO()
        for task in asyncio.all_tasks():
            task.print_stack(file=buffer)
        pytest.fail(
            f"teardown of {what} took over {TEARDOWN_SECONDS} s; tasks:\n{buffer.getvalue()}"
        )


def require_service(reason: str | None) -> None:
    """Skip (on a laptop) or fail (under CI=true) when a needed service is missing."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"required service missing under CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: instant simulator, a known admin key, a free port.

    Rate limits are off (tests fire requests much faster than any client should); the tests of
    the limits turn them on.
    """
    values: dict[str, Any] = {
        "rate_limit_per_key": 0,
        "auth_failures_per_minute": 0,
        "data_dir": data_dir,
        "api_key": ADMIN_KEY,
        "simulator_pairing_seconds": 0.0,
        "simulator_ack_seconds": 0.0,
        "send_retry_base_seconds": 0.01,
        "send_rate_per_second": 0,
        "send_recipient_spacing_seconds": 0,
        "send_jitter_seconds": 0,
        "port": free_port(),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def cluster_settings(data_dir: Path, name: str, **overrides: Any) -> Settings:
    """``make_settings`` of node ``name`` of a cluster on PostgreSQL and the test Redis (the
    database comes as an engine: ``postgres_schema``)."""
    return make_settings(
        data_dir / name,
        database_url="postgresql+asyncpg://unused/x",
        redis_url=REDIS_URL,
        node_name=name,
        **overrides,
    )


async def postgres_reason() -> str | None:
    """Why PostgreSQL cannot be used, or None."""
    engine = create_async_engine(POSTGRES_URL)
    try:
        async with asyncio.timeout(5), engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
    except Exception as error:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {error!r}"
    finally:
        await engine.dispose()
    return None


async def redis_reason() -> str | None:
    """Why Redis cannot be used, or None."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        async with asyncio.timeout(5):
            await client.ping()
    except Exception as error:
        return f"Redis at {REDIS_URL} is not reachable: {error!r}"
    finally:
        await client.aclose()
    return None


async def rabbitmq_reason() -> str | None:
    """Why RabbitMQ cannot be used, or None."""
    import aio_pika

    try:
        async with asyncio.timeout(5):
            connection = await aio_pika.connect(RABBITMQ_URL, timeout=5)
            await connection.close()
    except Exception as error:
        return f"RabbitMQ at 127.0.0.1:5672 is not reachable: {error!r}"
    return None


async def nats_reason() -> str | None:
    """Why NATS with JetStream cannot be used, or None."""
    import nats

    async def quiet(error: Exception) -> None:
        pass

    try:
        async with asyncio.timeout(5):
            client = await nats.connect(
                NATS_URL, allow_reconnect=False, connect_timeout=2, error_cb=quiet
            )
            try:
                await client.jetstream().account_info()
            finally:
                await client.close()
    except Exception as error:
        return f"NATS JetStream at {NATS_URL} is not reachable: {error!r}"
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The store under test."""
    return str(request.param)


@pytest.fixture
async def database(backend: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database: a SQLite file, or a fresh schema in PostgreSQL's ``test``."""
    if backend == "sqlite":
        engine = create_engine(make_settings(tmp_path))
        yield engine
        await bounded_teardown(engine.dispose(), "the SQLite engine")
        return
    require_service(await postgres_reason())
    async with postgres_schema() as engine_for:
        yield engine_for()


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[Callable[[], AsyncEngine]]:
    """A fresh schema in PostgreSQL's ``test``, dropped at the end: yields a factory of engines
    bound to it (one per node, when a test runs several)."""
    schema = "zg_" + secrets.token_hex(6)
    admin = create_async_engine(POSTGRES_URL)
    async with admin.begin() as connection:
        await connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engines: list[AsyncEngine] = []

    def engine_for() -> AsyncEngine:
        engine = create_async_engine(
            POSTGRES_URL,
            connect_args={
                "server_settings": {
                    "search_path": schema,
                    "application_name": schema,
                    "lock_timeout": "20s",
                    "idle_in_transaction_session_timeout": "60s",
                }
            },
        )
        engines.append(engine)
        return engine

    try:
        yield engine_for
    finally:
        for engine in engines:
            await bounded_teardown(engine.dispose(), "the PostgreSQL engine")
        async with admin.begin() as connection:
            # a connection a cancelled task left open would block DROP SCHEMA for ever
            await connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": schema},
            )
            await connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.dispose()


@pytest.fixture
async def services(database: AsyncEngine, tmp_path: Path) -> AsyncIterator[Services]:
    """Started services (migrated store, writer, default session) without HTTP."""
    built = build_services(make_settings(tmp_path), database)
    await start(built)
    try:
        yield built
    finally:
        await bounded_teardown(stop(built), "services")


@dataclass
class RunningServer:
    """A uvicorn serving zapgate in this event loop."""

    url: str
    services: Services
    hot: HotPath | None = None
    """The send hot path, when the server has it."""


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    """Settings of the ``server`` fixture; override the fixture to change them."""
    return make_settings(tmp_path)


@pytest.fixture
async def server(server_settings: Settings) -> AsyncIterator[RunningServer]:
    """A real uvicorn on 127.0.0.1 with the embedded default (SQLite + simulator)."""
    built = build_services(server_settings)
    async with serve(built) as running:
        yield running


class serve:
    """``async with serve(services) as running``: uvicorn in this loop, stopped on exit, with
    the send hot path as ``zapgate serve`` has it (``fast_lane=False``: neither fast lane)."""

    def __init__(self, built: Services, fast_lane: bool = True) -> None:
        self._services = built
        self._hot = HotPath(built) if fast_lane else None
        settings = built.settings
        config = uvicorn.Config(
            create_asgi(built, fast_lane=fast_lane),
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
            http=protocol(self._hot) if self._hot is not None else "httptools",
            **UVICORN_OPTIONS,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RunningServer:
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(15):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    raise RuntimeError("uvicorn exited during start-up")
                await asyncio.sleep(0.01)
        return RunningServer(self._services.settings.base_url, self._services, self._hot)

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await bounded_teardown(self._task, "the server")


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for ``server`` with the admin key."""
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10) as client:
        yield client


@pytest.fixture
async def any_server(database: AsyncEngine, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A real uvicorn over each backend: a SQLite file, then PostgreSQL."""
    built = build_services(make_settings(tmp_path), database)
    async with serve(built) as running:
        yield running


@pytest.fixture
async def any_api(any_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for ``any_server`` with the admin key."""
    async with httpx.AsyncClient(base_url=any_server.url, headers=AUTH, timeout=10) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real webhook receiver on 127.0.0.1 (``tests.support.receiver``), stopped after."""
    target = Receiver(free_port())
    await target.start()
    try:
        yield target
    finally:
        await target.stop()


@asynccontextmanager
async def served_cluster(
    tmp_path: Path, names: Sequence[str], **overrides: Any
) -> AsyncIterator[list[RunningServer]]:
    """Nodes ``names`` of one cluster (PostgreSQL and Redis), each its own engine and services
    (``cluster_settings`` with ``overrides``), served; stopped in reverse order at the end."""
    require_service(await postgres_reason())
    require_service(await redis_reason())
    async with postgres_schema() as engine_for, AsyncExitStack() as stack:
        running = []
        for name in names:
            built = build_services(cluster_settings(tmp_path, name, **overrides), engine_for())
            running.append(await stack.enter_async_context(serve(built)))
        yield running
