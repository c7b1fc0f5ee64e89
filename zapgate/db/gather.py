"""Gathered writes: items for one key that arrive while that key's job waits for the writer
join the job, so a burst of them costs one job (and one statement per shape), not one each.

The first item of a key queues a background job with the committer; later items for the same
key are added to it until it runs. When it runs it takes what has gathered (a retry of the same
job reuses exactly that) and answers every item at once. Items of a key are still written in
the order they came, and after everything of that tenant queued before the first of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from zapgate.db.committer import Committer, UnitOfWork

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 - the item
R = TypeVar("R")

Batch = Callable[[UnitOfWork, K, list[I]], Awaitable[list[R]]]
"""Writes the items of one key in the unit; returns one answer per item, in order."""


@dataclass(slots=True)
class _Waiting(Generic[I, R]):
    items: list[I] = field(default_factory=list)
    answers: list[asyncio.Future[R]] = field(default_factory=list)


class Gathering(Generic[K, I, R]):
    """Items per key, written together by ``batch`` in one background job of ``tenant(key)``."""

    def __init__(
        self, committer: Committer, batch: Batch[K, I, R], tenant: Callable[[K], str]
    ) -> None:
        self._committer = committer
        self._batch = batch
        self._tenant = tenant
        self._open: dict[K, _Waiting[I, R]] = {}

    async def submit(self, key: K, item: I) -> R:
        """Write ``item`` with whatever else of ``key`` gathers before the job runs."""
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        waiting = self._open.get(key)
        if waiting is not None:
            waiting.items.append(item)
            waiting.answers.append(answer)
            return await answer
        waiting = self._open[key] = _Waiting([item], [answer])
        taken: list[_Waiting[I, R]] = []

        async def job(unit: UnitOfWork) -> list[R]:
            if not taken:  # a retry of this job writes exactly what its first run took
                taken.append(self._close(key, waiting))
            return await self._batch(unit, key, taken[0].items)

        try:
            results = await self._committer.run(job, background=self._tenant(key))
        except BaseException as error:
            self._close(key, waiting)
            for other in waiting.answers[1:]:
                if not other.done():
                    other.set_exception(
                        error if isinstance(error, Exception) else RuntimeError(str(error))
                    )
            raise
        for other, result in zip(waiting.answers[1:], results[1:], strict=True):
            if not other.done():
                other.set_result(result)
        return results[0]

    def _close(self, key: K, waiting: _Waiting[I, R]) -> _Waiting[I, R]:
        """Stop adding to ``waiting`` (the next item of ``key`` starts a new job)."""
        if self._open.get(key) is waiting:
            del self._open[key]
        return waiting
