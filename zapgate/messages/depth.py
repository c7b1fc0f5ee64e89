"""How many messages each session has queued, kept in step with the outbox by the writer.

Counting the outbox on every send would cost a scan per request; instead a session's count is
read once (inside a write) and then moved by the writes that queue or unqueue its messages. The
changes are applied only when their transaction commits, so a failed or retried batch cannot
skew it. Per process, like the writer itself.
"""

from __future__ import annotations

from zapgate.db.committer import Refusal, UnitOfWork
from zapgate.limits.model import Limits
from zapgate.limits.service import LimitService
from zapgate.messages import repository

Key = tuple[str, str]


class _Pending:
    """One transaction's view of one session's count."""

    __slots__ = ("base", "delta")

    def __init__(self, base: int) -> None:
        self.base = base
        self.delta = 0


class OutboxDepth:
    """Queued messages per session, and the ``queued_per_session`` quota check."""

    def __init__(self) -> None:
        self._known: dict[Key, int] = {}

    async def reserve(
        self, unit: UnitOfWork, tenant: str, session: str, limits: Limits
    ) -> Refusal | None:
        """Count one more queued message; the refusal (QuotaExceeded) when the outbox is full."""
        pending = await self._pending(unit, (tenant, session), load=True)
        assert pending is not None
        refusal = LimitService.no_room(limits, "queued_per_session", pending.base + pending.delta)
        if refusal is None:
            pending.delta += 1
        return refusal

    async def release(self, unit: UnitOfWork, tenant: str, session: str) -> None:
        """Count one queued message fewer (it was sent or failed)."""
        pending = await self._pending(unit, (tenant, session), load=False)
        if pending is not None:
            pending.delta -= 1

    def forget(self, tenant: str, session: str) -> None:
        """Drop a session's count (it was deleted)."""
        self._known.pop((tenant, session), None)

    def forget_tenant(self, tenant: str) -> None:
        """Drop the counts of every session of ``tenant`` (it was deleted)."""
        for key in [key for key in self._known if key[0] == tenant]:
            del self._known[key]

    def queued(self, tenant: str, session: str) -> int | None:
        """The count, when known."""
        return self._known.get((tenant, session))

    async def _pending(self, unit: UnitOfWork, key: Key, load: bool) -> _Pending | None:
        marker = ("outbox_depth", key)
        pending: _Pending | None = unit.scratch.get(marker)
        if pending is not None:
            return pending
        base = self._known.get(key)
        if base is None:
            if not load:
                return None
            base = await repository.count_queued(unit.connection, *key)
        pending = _Pending(base)
        unit.scratch[marker] = pending
        unit.committed.append(lambda: self._settle(key, pending))
        return pending

    def _settle(self, key: Key, pending: _Pending) -> None:
        self._known[key] = max(0, pending.base + pending.delta)
