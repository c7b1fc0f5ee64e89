"""The bridge process: newline-delimited JSON-RPC over stdin/stdout (see PROTOCOL.md).

The bridge runs in its own process group so that stopping it also stops the Chromium it
launched. Its stderr goes to the logs; the last lines are kept for failure reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("zapgate.engines.wppconnect.bridge")
EventHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
STDERR_KEPT = 20
LINE_LIMIT = 64 * 1024 * 1024


class BridgeError(Exception):
    """The bridge answered a request with an error (``code``: the bridge's or wa-js's, if any)."""

    def __init__(self, message: str, transient: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


class BridgeGone(Exception):
    """The bridge process is not running (any more)."""


class BridgeProcess:
    """One ``node bridge.mjs`` process and its request/response bookkeeping."""

    def __init__(self, node: str, script: Path, on_event: EventHandler, label: str) -> None:
        self._node = node
        self._script = script
        self._on_event = on_event
        self._label = label
        self._process: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_KEPT)
        self.exited = asyncio.Event()
        self.returncode: int | None = None

    @property
    def pid(self) -> int | None:
        """The bridge's process id (also its process group id)."""
        return self._process.pid if self._process else None

    async def spawn(self) -> None:
        """Start the process in a new process group."""
        self._process = await asyncio.create_subprocess_exec(
            self._node,
            str(self._script),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(self._script.parent),
            start_new_session=True,
            limit=LINE_LIMIT,
        )
        self._tasks = [
            asyncio.create_task(self._read_stdout(), name=f"bridge-out:{self._label}"),
            asyncio.create_task(self._read_stderr(), name=f"bridge-err:{self._label}"),
        ]

    async def request(self, method: str, params: dict[str, Any], limit: float | None) -> Any:
        """Send a request and await its answer (``limit`` seconds; None waits as long as it takes).

        Raises BridgeError (the bridge said no), BridgeGone or TimeoutError.
        """
        process = self._process
        if process is None or process.stdin is None or self.exited.is_set():
            raise BridgeGone("the bridge is not running")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        line = orjson.dumps({"id": request_id, "method": method, "params": params}) + b"\n"
        try:
            process.stdin.write(line)
            await process.stdin.drain()
            async with asyncio.timeout(limit):
                return await future
        except (BrokenPipeError, ConnectionResetError) as error:
            raise BridgeGone(f"the bridge is not running: {error}") from None
        finally:
            self._pending.pop(request_id, None)

    async def terminate(self, grace: float = 5.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(grace):
                    await process.wait()
            except TimeoutError:
                pass
        _signal_group(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            await process.wait()
        others = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        self._fail_pending("the bridge was stopped")

    async def _read_stdout(self) -> None:
        process = self._process
        assert process is not None
        assert process.stdout is not None
        try:
            while line := await process.stdout.readline():
                await self._dispatch(line)
        except asyncio.CancelledError:
            # Cancelled without terminate() (the loop is shutting down): the bridge runs in its
            # own session, so nothing else would stop it and its Chromium; and waiting for a
            # process nobody stops would turn this cancel into a hang.
            _signal_group(process.pid, signal.SIGKILL)
            raise
        finally:
            self.returncode = await process.wait()
            self._fail_pending(f"the bridge exited with code {self.returncode}")
            self.exited.set()

    async def _dispatch(self, line: bytes) -> None:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("[%s] not a protocol line: %r", self._label, line[:200])
            return
        if "id" in message:
            self._answer(message)
            return
        try:
            await self._on_event(str(message.get("event")), dict(message.get("data") or {}))
        except Exception:
            log.exception("[%s] handling bridge event %s failed", self._label, message.get("event"))

    def _answer(self, message: dict[str, Any]) -> None:
        future = self._pending.get(int(message["id"]))
        if future is None or future.done():
            return
        error = message.get("error")
        if error:
            transient = bool(error.get("transient", False))
            code = error.get("code")
            future.set_exception(
                BridgeError(
                    str(error.get("message", "bridge error")),
                    transient,
                    code[:64] if isinstance(code, str) else None,
                )
            )
        else:
            future.set_result(message.get("result"))

    async def _read_stderr(self) -> None:
        process = self._process
        assert process is not None
        assert process.stderr is not None
        while line := await process.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            if text:
                self.stderr_tail.append(text)
                log.info("[%s] %s", self._label, text)

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BridgeGone(reason))
        self._pending.clear()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


__all__ = ["BridgeError", "BridgeGone", "BridgeProcess"]
