"""An EngineSink that records every report, for engine tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zapgate.engines.base import AckStatus, EngineEvent, InboundMessage, SessionStatus


@dataclass(frozen=True)
class Report:
    """One call an engine made: ``kind`` is the sink method, ``value`` its argument(s)."""

    kind: str
    value: Any


class RecordingSink:
    """Keeps reports in order and lets tests await one."""

    def __init__(self) -> None:
        self.reports: list[Report] = []
        self._changed = asyncio.Event()
        self._next_id = 0

    def _add(self, kind: str, value: Any) -> None:
        self.reports.append(Report(kind, value))
        self._changed.set()

    async def status(self, status: SessionStatus, reason: str | None = None) -> None:
        self._add("status", (status, reason))

    async def qr(self, raw: str) -> None:
        self._add("qr", raw)

    async def me(self, account: dict[str, Any]) -> None:
        self._add("me", account)

    async def message(self, message: InboundMessage) -> str:
        self._next_id += 1
        self._add("message", message)
        return f"stored-{self._next_id}"

    async def ack(self, engine_message_id: str, status: AckStatus) -> None:
        self._add("ack", (engine_message_id, status))

    async def event(self, event: EngineEvent) -> None:
        self._add("event", event)

    async def heartbeat(self) -> None:
        self._add("heartbeat", None)

    def statuses(self) -> list[SessionStatus]:
        """Every status reported, in order."""
        return [r.value[0] for r in self.reports if r.kind == "status"]

    async def wait_for(self, predicate: Callable[[Report], bool], timeout: float = 10.0) -> Report:
        """The first report (past or future) matching ``predicate``."""
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for report in self.reports[seen:]:
                    if predicate(report):
                        return report
                seen = len(self.reports)
                self._changed.clear()
                await self._changed.wait()


def is_status(status: SessionStatus) -> Callable[[Report], bool]:
    """Matches a status report."""
    return lambda r: r.kind == "status" and r.value[0] is status
