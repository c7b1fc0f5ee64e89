"""Idempotency keys with the IETF draft's semantics, recorded in the same transaction as the effect.

A route that honours ``Idempotency-Key`` asks ``begin`` for a Claim and hands it to the use case;
the use case's write job calls ``claim.guard`` first and ``claim.record`` with its result, so the
effect (a message, its event) and the stored answer commit together or not at all.

- same key, same request  -> the stored answer (IdempotentReplay, rendered with its status)
- same key, other request -> IdempotencyKeyMismatch (422)
- same key, still running -> IdempotencyKeyInProgress (409)
Keys are scoped per tenant and expire after ``ttl_seconds``.

"Still running" is known from this node's memory, and in cluster mode (a ``committer`` given)
from a claim in the database too, so that a key is in flight on one node of the cluster at a
time. ``begin`` writes the claim; the write of the effect deletes it (``guard``), so the claim and
the stored answer change places in one commit; ``end`` deletes it if no write did. A node that
dies leaves its claim to lapse after ``CLAIM_SECONDS``, and another node may then take it over;
if the first node was only slow, ``guard`` finds its claim gone and refuses its write: a late
holder gets a 409, never a second effect. Single-node mode writes no claim.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.committer import STOP_DRAIN_SECONDS, Committer, Refusal, UnitOfWork
from zapgate.errors import (
    IdempotencyKeyInProgress,
    IdempotencyKeyMismatch,
    IdempotentReplay,
    InvalidInput,
)
from zapgate.idempotency import repository
from zapgate.ids import new_id

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
Render = Callable[[Any], tuple[int, Any]]
IN_PROGRESS = "a request with this Idempotency-Key is in progress"
CLAIM_SECONDS = STOP_DRAIN_SECONDS
"""How long a claim in the database holds its key when its node stops answering (cluster mode).

A claim lasts from ``begin`` to the write of the effect: one read, then one job the writer is
given ``STOP_DRAIN_SECONDS`` to finish even when it drains everything at a stop. A claim older
than that was left by a node that died or is stuck. Shorter would not allow two effects (the
late write is refused), only refuse slow requests; longer makes a client whose node died wait
longer (409) before it can use its key again."""


def fingerprint(method: str, path: str, body: bytes) -> str:
    """A digest of the request; JSON bodies are compared by content, not key order."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


@dataclass(slots=True)
class Claim:
    """A key being used by one request on this node."""

    tenant: str
    key: str
    fingerprint: str
    ttl_ms: int
    render: Render
    claim_id: str | None = None
    """Its claim in the database (cluster mode)."""
    released: bool = False
    """Whether the claim in the database was deleted by a committed write."""

    async def guard(self, unit: UnitOfWork) -> None:
        """Inside the write: forget this key if it expired; refuse if it was stored meanwhile,
        or (cluster mode) if this request's claim lapsed and another request took it over.

        The write deletes the claim: the stored answer replaces it when both commit.
        """
        if self.claim_id is not None:
            if not await repository.release(unit.connection, self.tenant, self.key, self.claim_id):
                raise IdempotencyKeyInProgress(IN_PROGRESS)
            unit.committed.append(self._released)
        await repository.forget_expired(unit.connection, self.tenant, self.key)
        stored = await repository.find(unit.connection, self.tenant, self.key)
        _raise_if_stored(stored, self.fingerprint)

    def record(self, unit: UnitOfWork, result: Any) -> None:
        """Inside the write: store the answer ``result`` will be rendered as."""
        answer = self.render(result)
        repository.insert(unit, self.tenant, self.key, self.fingerprint, answer, self.ttl_ms)

    def _released(self) -> None:
        self.released = True


class Idempotency:
    """Hands out claims; remembers which keys are in flight on this node, and in cluster mode
    (``committer`` given) claims them in the database for the whole cluster."""

    def __init__(
        self,
        database: AsyncEngine,
        ttl_seconds: float,
        committer: Committer | None = None,
        claim_seconds: float = CLAIM_SECONDS,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._database = database
        self._ttl_ms = int(ttl_seconds * 1000)
        self._in_flight: set[tuple[str, str]] = set()
        self._committer = committer
        self._claim_ms = int(claim_seconds * 1000)
        self._clock = clock
        self._releasing: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def begin(self, tenant: str, key: str, request_fingerprint: str, render: Render) -> Claim:
        """Claim ``key`` for a request, or raise replay / mismatch / in-progress."""
        if not KEY_PATTERN.match(key):
            raise InvalidInput("Idempotency-Key must be 1-255 printable ASCII characters")
        if (tenant, key) in self._in_flight:
            raise IdempotencyKeyInProgress(IN_PROGRESS)
        releasing = self._releasing.get((tenant, key))
        if releasing is not None:  # this node's previous request of the key is letting it go
            await asyncio.shield(releasing)
        async with self._database.connect() as connection:
            _raise_if_stored(await repository.find(connection, tenant, key), request_fingerprint)
        if (tenant, key) in self._in_flight:
            raise IdempotencyKeyInProgress(IN_PROGRESS)
        self._in_flight.add((tenant, key))
        claim = Claim(tenant, key, request_fingerprint, self._ttl_ms, render)
        if self._committer is not None:
            try:
                claim.claim_id = await self._claim(self._committer, tenant, key)
            except BaseException:
                self._in_flight.discard((tenant, key))
                raise
        return claim

    def end(self, claim: Claim) -> None:
        """The request is over (whatever happened); its claim in the database, if the write did
        not delete it, is deleted in the background."""
        pair = (claim.tenant, claim.key)
        self._in_flight.discard(pair)
        if claim.claim_id is None or claim.released or self._committer is None:
            return
        task = asyncio.create_task(self._release(self._committer, claim))
        self._releasing[pair] = task
        task.add_done_callback(lambda done: self._forget_release(pair, done))

    async def drain(self) -> None:
        """Wait until the claims ``end`` is deleting are deleted (before the writer stops)."""
        while self._releasing:
            await asyncio.wait(list(self._releasing.values()))

    async def purge_expired(self) -> int:
        """Delete expired keys (and claims left by nodes that died); returns how many keys."""
        if self._committer is not None:
            await repository.all_tenants_purge_expired_claims(self._database)
        return await repository.all_tenants_purge_expired(self._database)

    async def _claim(self, committer: Committer, tenant: str, key: str) -> str:
        """A claim of ``tenant``'s ``key`` in the database; IdempotencyKeyInProgress when
        another node's request holds it."""
        claim_id = new_id("claim")

        async def job(unit: UnitOfWork) -> str | Refusal:
            now = self._clock()
            if await repository.claim(
                unit.connection, tenant, key, claim_id, now, now + self._claim_ms
            ):
                return claim_id
            return Refusal(IdempotencyKeyInProgress(IN_PROGRESS))

        return await committer.run(job)

    async def _release(self, committer: Committer, claim: Claim) -> None:
        claim_id = claim.claim_id
        assert claim_id is not None

        async def job(unit: UnitOfWork) -> None:
            await repository.release(unit.connection, claim.tenant, claim.key, claim_id)

        try:
            await committer.run(job)
        except Exception as error:
            log.warning(
                "could not release an Idempotency-Key claim (it lapses in %s s): %s",
                self._claim_ms // 1000,
                error,
            )

    def _forget_release(self, pair: tuple[str, str], task: asyncio.Task[None]) -> None:
        if self._releasing.get(pair) is task:
            del self._releasing[pair]


def _raise_if_stored(row: Any, request_fingerprint: str) -> None:
    if row is None:
        return
    if row["fingerprint"] != request_fingerprint:
        raise IdempotencyKeyMismatch(
            "this Idempotency-Key was used with a different request; use a new key"
        )
    raise IdempotentReplay(row["response_status"], row["response_body"])
