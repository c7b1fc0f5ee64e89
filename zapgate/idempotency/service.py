"""Idempotency keys with the IETF draft's semantics, recorded in the same transaction as the effect.

A route that honours ``Idempotency-Key`` asks ``begin`` for a Claim and hands it to the use case;
the use case's write job calls ``claim.guard`` first and ``claim.record`` with its result, so the
effect (a message, its event) and the stored answer commit together or not at all.

- same key, same request  -> the stored answer (IdempotentReplay, rendered with its status)
- same key, other request -> IdempotencyKeyMismatch (422)
- same key, still running -> IdempotencyKeyInProgress (409)
Keys are scoped per tenant and expire after ``ttl_seconds``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.db.committer import UnitOfWork
from zapgate.errors import (
    IdempotencyKeyInProgress,
    IdempotencyKeyMismatch,
    IdempotentReplay,
    InvalidInput,
)
from zapgate.idempotency import repository

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
Render = Callable[[Any], tuple[int, Any]]


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

    async def guard(self, unit: UnitOfWork) -> None:
        """Inside the write: forget this key if it expired; refuse if it was stored meanwhile."""
        await repository.forget_expired(unit.connection, self.tenant, self.key)
        stored = await repository.find(unit.connection, self.tenant, self.key)
        _raise_if_stored(stored, self.fingerprint)

    def record(self, unit: UnitOfWork, result: Any) -> None:
        """Inside the write: store the answer ``result`` will be rendered as."""
        answer = self.render(result)
        repository.insert(unit, self.tenant, self.key, self.fingerprint, answer, self.ttl_ms)


class Idempotency:
    """Hands out claims; remembers which keys are in flight on this node."""

    def __init__(self, database: AsyncEngine, ttl_seconds: float) -> None:
        self._database = database
        self._ttl_ms = int(ttl_seconds * 1000)
        self._in_flight: set[tuple[str, str]] = set()

    async def begin(self, tenant: str, key: str, request_fingerprint: str, render: Render) -> Claim:
        """Claim ``key`` for a request, or raise replay / mismatch / in-progress."""
        if not KEY_PATTERN.match(key):
            raise InvalidInput("Idempotency-Key must be 1-255 printable ASCII characters")
        if (tenant, key) in self._in_flight:
            raise IdempotencyKeyInProgress("a request with this Idempotency-Key is in progress")
        async with self._database.connect() as connection:
            _raise_if_stored(await repository.find(connection, tenant, key), request_fingerprint)
        if (tenant, key) in self._in_flight:
            raise IdempotencyKeyInProgress("a request with this Idempotency-Key is in progress")
        self._in_flight.add((tenant, key))
        return Claim(tenant, key, request_fingerprint, self._ttl_ms, render)

    def end(self, claim: Claim) -> None:
        """The request is over (whatever happened)."""
        self._in_flight.discard((claim.tenant, claim.key))

    async def purge_expired(self) -> int:
        """Delete expired keys; returns how many."""
        return await repository.all_tenants_purge_expired(self._database)


def _raise_if_stored(row: Any, request_fingerprint: str) -> None:
    if row is None:
        return
    if row["fingerprint"] != request_fingerprint:
        raise IdempotencyKeyMismatch(
            "this Idempotency-Key was used with a different request; use a new key"
        )
    raise IdempotentReplay(row["response_status"], row["response_body"])
