"""A real zapgate cluster for tests: several ``python -m zapgate serve`` processes on one fresh
PostgreSQL database and one private ``redis-server``, each node killable (``kill -9``),
pausable (SIGSTOP/SIGCONT), stoppable and restartable.

Everything is bounded by a deadline, and :meth:`Cluster.close` (also run by ``with Cluster(...)``
when a test fails) kills every process, drops the database and stops Redis. If the test run
itself dies first (a watchdog's ``os._exit``, a SIGKILL), a small reaper process does the same,
so no node is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import sqlalchemy as sa
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import ADMIN_KEY, AUTH, POSTGRES_URL, free_port
from tests.support.process import ServerProcess

T = TypeVar("T")
REDIS_SERVER = "/usr/bin/redis-server"
NODE_NAMES = ("a", "b", "c", "d", "e")
TTL_SECONDS = 3.0
SQL_SECONDS = 30.0
REDIS_START_SECONDS = 10.0
LOG_TAIL = 3000

CLUSTER_ENV = {
    "ZAPGATE_SIMULATOR_PAIRING_SECONDS": "0",
    "ZAPGATE_SIMULATOR_ACK_SECONDS": "0.05",
    "ZAPGATE_SEND_RETRY_BASE_SECONDS": "0.1",
    "ZAPGATE_TERMINAL_QR": "false",
}
"""What every node of a test cluster is told besides where the database and Redis are: the
simulator pairs at once and acknowledges quickly (pacing and rate limits are off in
``ServerProcess``)."""


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> float:
    """How long until ``check()`` holds, looking every 50 ms; TimeoutError naming ``what``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            raise TimeoutError(f"{what} did not happen within {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - start


def run_in_a_thread(work: Callable[[], Coroutine[Any, Any, T]], seconds: float) -> T:
    """Run a coroutine to completion on a loop of its own, also when the caller is async."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(asyncio.wait_for(work(), seconds))).result()


class Database:
    """A fresh PostgreSQL database ``zg_<hex>`` made through ``POSTGRES_URL``'s server."""

    def __init__(self, admin_url: str = POSTGRES_URL) -> None:
        self.name = "zg_" + secrets.token_hex(6)
        self.admin_url = admin_url
        self.url = make_url(admin_url).set(database=self.name).render_as_string(False)
        """The ``postgresql+asyncpg://`` URL the nodes are given."""
        self.created = False

    def create(self) -> None:
        self._execute(f'CREATE DATABASE "{self.name}"')
        self.created = True

    def drop(self) -> None:
        """Drop it, closing whatever connections are left (a killed node's, a paused one's)."""
        if self.created:
            self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False

    def _execute(self, statement: str) -> None:
        async def run() -> None:
            engine = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
            try:
                async with engine.connect() as connection:
                    await connection.execute(sa.text(statement))
            finally:
                await engine.dispose()

        run_in_a_thread(run, SQL_SECONDS)


class RedisServer:
    """A private ``redis-server`` on a loopback port, with nothing saved; it can be stopped and
    started again on the same port."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None
        self.log = directory / "redis.log"

    def start(self) -> None:
        """Start and wait until it answers PING."""
        self._directory.mkdir(parents=True, exist_ok=True)
        command = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self._directory),
        ]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(self._answers, REDIS_START_SECONDS, f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {self.log.read_text()[-LOG_TAIL:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """SIGKILL: clients lose their connections at once (nothing is saved anyway)."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


REAPER = """
import asyncio, os, signal, sys, time
parent, marker, root, database = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
while os.getppid() == parent and os.path.exists(marker):
    time.sleep(0.5)
if os.path.exists(marker):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            seen = os.readlink(f"/proc/{pid}/cwd").encode()  # redis-server renames itself
            for part in ("cmdline", "environ"):
                with open(f"/proc/{pid}/{part}", "rb") as found:
                    seen += found.read()
            if root.encode() in seen and int(pid) != os.getpid():
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    os.remove(marker)
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    async def drop():
        url = os.environ["ZG_REAPER_ADMIN_URL"]
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as connection:
            await connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await engine.dispose()

    asyncio.run(drop())
"""
"""Runs beside the test process. If that process ends while the marker file still exists (it
died without closing its cluster: a watchdog's ``os._exit``, a SIGKILL), it kills every process
that names the cluster's directory or works in it (the nodes' data dirs, Redis's dir) and drops
the database."""


class Reaper:
    """The cleanup of last resort of one cluster (see ``REAPER``)."""

    def __init__(self, root: Path, database: Database) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._marker = root / "reaper"
        self._marker.touch()
        arguments = [str(os.getpid()), str(self._marker), str(root), database.name]
        self._process = subprocess.Popen(
            [sys.executable, "-c", REAPER, *arguments],
            env={**os.environ, "ZG_REAPER_ADMIN_URL": database.admin_url},
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def close(self) -> None:
        """Everything was cleaned up: the reaper ends without doing anything."""
        self._marker.unlink(missing_ok=True)
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)


class Node(ServerProcess):
    """One zapgate process of the cluster, named ``name``."""

    def __init__(self, name: str, data_dir: Path, port: int, **env: str) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(data_dir, port, ADMIN_KEY, ZAPGATE_NODE_NAME=name, **env)
        self.name = name
        self.paused = False

    def pause(self) -> None:
        super().pause()
        self.paused = True

    def resume(self) -> None:
        super().resume()
        self.paused = False

    def kill(self) -> None:
        super().kill()
        self.paused = False

    def api(self, timeout: float = 10) -> httpx.AsyncClient:
        """An async client of this node with the admin key."""
        return httpx.AsyncClient(base_url=self.url, headers=AUTH, timeout=timeout)

    def answers(self, seconds: float = 5) -> bool:
        """Whether ``/health`` answers within ``seconds``."""
        try:
            return httpx.get(f"{self.url}/health", timeout=seconds).status_code == 200
        except httpx.TransportError:
            return False

    def tail(self) -> str:
        """The end of its log."""
        return self.log.read_text(errors="replace")[-LOG_TAIL:] if self.log.exists() else ""

    def close(self) -> None:
        """SIGKILL whatever is left (a paused process too), quietly."""
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            self.kill()


class Cluster:
    """``size`` nodes (named a, b, c, ...) on one fresh database and one private Redis.

    Use as a context manager: it starts everything, and closes everything on the way out.
    """

    def __init__(self, root: Path, size: int = 3, ttl: float = TTL_SECONDS, **env: str) -> None:
        self.root = root
        self.ttl = ttl
        self.database = Database()
        self.redis = RedisServer(root / "redis")
        shared = {
            **CLUSTER_ENV,
            "ZAPGATE_DATABASE_URL": self.database.url,
            "ZAPGATE_REDIS_URL": self.redis.url,
            "ZAPGATE_LEASE_TTL_SECONDS": str(ttl),
            **env,
        }
        self.nodes = [Node(name, root / name, free_port(), **shared) for name in NODE_NAMES[:size]]
        self._reaper: Reaper | None = None

    def __getitem__(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def start(self) -> None:
        """The database, Redis, the first node alone, then the others together (nodes started
        together on an empty database race to migrate it, and all but one fail)."""
        self._reaper = Reaper(self.root, self.database)
        self.database.create()
        self.redis.start()
        first, *others = self.nodes
        first.start()
        with ThreadPoolExecutor(len(others) or 1) as pool:
            for started in [pool.submit(node.start) for node in others]:
                started.result()

    def close(self) -> None:
        """Kill every node, drop the database and stop Redis (each step even if one fails)."""
        try:
            for node in self.nodes:
                node.close()
        finally:
            try:
                self.database.drop()
            finally:
                self.redis.stop()
                if self._reaper is not None:
                    self._reaper.close()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # the nodes -------------------------------------------------------------------------------

    def alive(self) -> list[Node]:
        """The nodes whose process runs (paused ones included)."""
        return [node for node in self.nodes if node.running]

    def kill(self, name: str) -> None:
        """``kill -9`` one node."""
        self[name].kill()

    def pause(self, name: str) -> None:
        """SIGSTOP one node."""
        self[name].pause()

    def resume(self, name: str) -> None:
        """SIGCONT one node."""
        self[name].resume()

    def stop(self, name: str) -> None:
        """A graceful stop (SIGTERM; SIGKILL after 10 s)."""
        node = self[name]
        node.resume()  # a paused process would hold SIGTERM until SIGCONT
        node.stop()

    def restart(self, name: str) -> None:
        """Stop (gracefully) if running, then start again on the same port and data dir."""
        if self[name].running:
            self.stop(name)
        self[name].start()

    def revive(self) -> None:
        """Bring back what a test left down: Redis, paused nodes, dead ones, and stuck ones (a
        node that does not answer ``/health`` within 2 s is killed and started again)."""
        if not self.redis.running:
            self.redis.start()
        for node in self.nodes:
            if node.paused:
                node.resume()
        down = [node for node in self.nodes if not (node.running and node.answers(2))]
        for node in down:
            node.close()
        with ThreadPoolExecutor(len(down) or 1) as pool:
            for started in [pool.submit(node.start) for node in down]:
                started.result()

    def logs(self) -> str:
        """The end of every node's log, for a failure message."""
        return "\n".join(f"--- node {node.name} ---\n{node.tail()}" for node in self.nodes)
