"""Drive the real JS ``socket.io-client`` (tests/js/client.mjs) from async tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

REPO_ROOT = Path(__file__).resolve().parents[2]
JS_DIR = REPO_ROOT / "tests" / "js"
CLIENT_SCRIPT = JS_DIR / "client.mjs"
_CLIENT_PACKAGE = JS_DIR / "node_modules" / "socket.io-client" / "package.json"

Line = dict[str, Any]


def node_harness_available() -> str | None:
    """Return None if the Node harness can run, else why it cannot."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not _CLIENT_PACKAGE.exists():
        return f"socket.io-client is not installed in {JS_DIR} (run npm ci there)"
    return None


def ensure_node_harness() -> str | None:
    """Run ``npm ci`` in tests/js if needed; return None if usable, else why not."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not _CLIENT_PACKAGE.exists():
        npm = shutil.which("npm")
        if npm is None:
            return "npm is not on PATH"
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            return f"npm ci failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return node_harness_available()


class JsSocketClient:
    """One ``node tests/js/client.mjs URL`` process; use as an async context manager.

    Each stdout line of the harness is a JSON object with a ``kind`` key:
    connect, connect_error, event, ack, disconnect, timeout or error.
    """

    def __init__(
        self,
        url: str,
        *,
        auth: Mapping[str, Any] | None = None,
        events: Sequence[str] | None = None,
        exit_after: int | None = None,
        timeout_ms: int = 10_000,
        transports: Sequence[str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Store options; ``extra`` adds raw harness options (e.g. path, query)."""
        self.url = url
        opts: dict[str, Any] = {"timeout_ms": timeout_ms}
        if auth is not None:
            opts["auth"] = dict(auth)
        if events is not None:
            opts["events"] = list(events)
        if exit_after is not None:
            opts["exit_after"] = exit_after
        if transports is not None:
            opts["transports"] = list(transports)
        opts.update(extra or {})
        self.options = opts
        self.lines: list[Line] = []
        """Every line the process has printed so far, consumed or not."""
        self._proc: asyncio.subprocess.Process | None = None
        self._queue: asyncio.Queue[Line | None] = asyncio.Queue()
        self._eof = False
        self._stderr = bytearray()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def process(self) -> asyncio.subprocess.Process:
        """The running node process (after start)."""
        if self._proc is None:
            raise RuntimeError("JsSocketClient not started")
        return self._proc

    @property
    def stderr(self) -> str:
        """Stderr collected from the node process so far."""
        return self._stderr.decode(errors="replace")

    async def start(self) -> None:
        """Spawn the node process."""
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH")
        env = {**os.environ, "ZG_CLIENT_OPTS": json.dumps(self.options)}
        self._proc = await asyncio.create_subprocess_exec(
            node,
            str(CLIENT_SCRIPT),
            self.url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=JS_DIR,
            limit=16 * 1024 * 1024,
        )
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    async def _read_stdout(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        try:
            while raw := await stream.readline():
                text = raw.decode(errors="replace").strip()
                try:
                    parsed = json.loads(text)
                except json.JSONDecodeError:
                    parsed = None
                line: Line = parsed if isinstance(parsed, dict) else {"kind": "raw", "line": text}
                self.lines.append(line)
                self._queue.put_nowait(line)
        finally:
            self._queue.put_nowait(None)

    async def _read_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        while chunk := await stream.read(65536):
            self._stderr += chunk

    def _describe(self) -> str:
        return f"lines so far: {self.lines!r}; stderr: {self.stderr[-2000:]!r}"

    async def next_line(self, timeout: float = 5.0) -> Line:
        """Return the next unconsumed stdout line; EOFError once the output ended."""
        if self._proc is None:
            raise RuntimeError("JsSocketClient not started")
        if self._eof:
            raise EOFError(f"node client output ended; {self._describe()}")
        try:
            line = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no line within {timeout}s; {self._describe()}") from None
        if line is None:
            self._eof = True
            raise EOFError(f"node client output ended; {self._describe()}")
        return line

    async def wait_for(self, predicate: Callable[[Line], bool], timeout: float = 5.0) -> Line:
        """Skip lines until one satisfies predicate; the timeout covers the whole wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"predicate not met within {timeout}s; {self._describe()}")
            try:
                line = await self.next_line(remaining)
            except TimeoutError:
                raise TimeoutError(
                    f"predicate not met within {timeout}s; {self._describe()}"
                ) from None
            if predicate(line):
                return line

    async def _send(self, command: Mapping[str, Any]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps(command).encode() + b"\n")
        await stdin.drain()

    async def emit(self, name: str, *args: Any) -> None:
        """Emit an event with an ack callback; the ack arrives as a ``kind: ack`` line."""
        await self._send({"emit": name, "args": list(args)})

    async def close(self) -> None:
        """Ask the client to disconnect and exit 0 (no-op if it already exited)."""
        if self.process.returncode is not None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await self._send({"close": True})

    async def wait_exit(self, timeout: float = 5.0) -> int:
        """Wait for the process to exit and return its exit code (lines stay readable)."""
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def kill(self) -> None:
        """Kill the process if still running and reap it."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 1.0)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.kill()
