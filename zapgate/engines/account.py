"""What the engines of an HTTP API share (Cloud API, Telegram, SMS): a session is WORKING while
its account answers. The account is looked at now and every ``health_seconds``, or at once when
a send could not get through. A sign of life goes out in between, so a long ``health_seconds``
never looks stale. While the API cannot be reached the session is DISCONNECTED and looks again
sooner (1, 2, 4... s); refused credentials make it FAILED."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from zapgate.engines.base import EngineSink, SessionStatus
from zapgate.tasks import cancel_and_wait
from zapgate.webhooks.http11 import Http11Client

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30.0
"""A sign of life this often, whatever ``health_seconds`` (a silent session is restarted)."""


class ApiError(Protocol):
    """An API's error as the engines sort it."""

    @property
    def auth(self) -> bool:
        """The credentials were refused: nothing will work until they change."""

    @property
    def transient(self) -> bool:
        """Trying again later may work."""


class AccountSession:
    """The base of an HTTP API engine: its sink, whether it is WORKING, the task that looks."""

    def __init__(self) -> None:
        self._sink: EngineSink | None = None
        self._ready = False
        self._look = asyncio.Event()
        """Set to look at the account now (a send could not get through)."""
        self._task: asyncio.Task[None] | None = None
        self._http: Http11Client | None = None

    async def stop(self) -> None:
        self._ready = False
        self._sink = None
        await cancel_and_wait(self._task)
        self._task = None
        if self._http is not None:
            await self._http.close()

    async def logout(self) -> None:
        """Nothing to unlink (the credentials stay valid at the provider): the same as stopping."""
        await self.stop()

    async def _watch_account(
        self,
        look: Callable[[], Awaitable[dict[str, Any]]],
        errors: type[Exception],
        health_seconds: float,
    ) -> None:
        """``look`` (the account as ``me``) now and every ``health_seconds`` (see the module);
        ``errors`` is the API's error class (an ``ApiError``)."""
        failures = 0
        while self._sink is not None:
            try:
                account = await look()
            except errors as raised:
                error: ApiError = raised  # type: ignore[assignment]  # the API's error class
                if error.auth or not error.transient:
                    await self._report_failed(str(raised))
                    return
                failures += 1
                if self._ready or failures == 1:
                    self._ready = False
                    await self._report(SessionStatus.DISCONNECTED, str(raised))
                await self._pause(min(health_seconds, 2.0 ** (failures - 1)))
                continue
            failures = 0
            sink = self._sink
            if sink is None:
                return
            if not self._ready:
                await sink.me(account)
                self._ready = True
                await sink.status(SessionStatus.WORKING)
            else:
                await sink.heartbeat()
            await self._pause(health_seconds)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` (or until asked to look now), a sign of life every
        ``HEARTBEAT_SECONDS`` meanwhile."""
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, HEARTBEAT_SECONDS)):
                    await self._look.wait()
            if self._look.is_set():
                break
            if self._sink is not None and self._ready:
                await self._sink.heartbeat()
        self._look.clear()

    async def _report(self, status: SessionStatus, reason: str | None = None) -> None:
        if self._sink is not None:
            await self._sink.status(status, reason)

    async def _report_failed(self, reason: str) -> None:
        self._ready = False
        await self._report(SessionStatus.FAILED, reason)

    def _fail_soon(self, reason: str) -> None:
        """A send found the credentials refused: the session fails (its messages wait)."""
        if self._ready:
            self._ready = False
            task = asyncio.create_task(self._report_failed(reason))
            task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not report a failed session", exc_info=task.exception())
