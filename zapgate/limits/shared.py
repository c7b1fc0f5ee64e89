"""Cluster mode: token buckets counted in Redis, so that every node draws from the same bucket.

One Lua script (sent once, then run by EVALSHA) refills and takes atomically on Redis's clock,
so a key limited to R requests a second gets R across the cluster, not R per node. A request
makes one round trip: alone, at once; while a call is in flight, the requests that arrive share
the next one (one script call for all their buckets), so under load the client's cost per
request is a fraction of a call's. The buckets are hashes named ``zapgate:rl:<kind>:<name>``
that expire once they would be full again (a missing bucket is a full one, as in
``TokenBuckets``). They need one Redis, not a sharded Redis Cluster (a call names several keys).

Every answer is copied into this node's own buckets. They answer the checks that cannot wait for
Redis (an address refused before anything is read), and they carry on counting, from where the
cluster was, while Redis is unreachable: each node then limits on its own, as a single node does
(logged once per outage, never an error), and one request tries Redis again every
``RETRY_SECONDS`` until it answers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from zapgate.limits.buckets import Decision, TokenBuckets, decision
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)

PREFIX = "zapgate:rl:"
RETRY_SECONDS = 1.0
"""After a failure, how long requests use the local buckets before one tries Redis again."""
TIMEOUT_SECONDS = 0.5
"""The longest a request waits for Redis (to connect, or to answer) before it counts locally."""
MOST_PER_CALL = 256
"""Buckets in one script call (Redis runs nothing else meanwhile: a few microseconds each)."""

SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local replies = {}
for i, bucket in ipairs(KEYS) do
  local rate = tonumber(ARGV[i * 4 - 3])
  local burst = tonumber(ARGV[i * 4 - 2])
  local cost = tonumber(ARGV[i * 4 - 1])
  local state = redis.call('HMGET', bucket, 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
  local taken = tokens >= cost
  if cost > 0 then
    if taken then
      tokens = tokens - cost
    end
    redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', tostring(now))
    redis.call('PEXPIRE', bucket, ARGV[i * 4])
  end
  replies[i * 2 - 1] = taken and 1 or 0
  replies[i * 2] = tostring(tokens)
end
return replies
"""
"""KEYS: the buckets; ARGV, four per bucket: rate (tokens a second), burst, cost (0: only look),
expiry (ms). Returns, per bucket, whether the tokens were taken and how many are left, in order
(a bucket named twice is taken from twice). Times are Redis's, in ms (exact in a Lua number), so
the nodes' clocks do not matter."""

Answer = tuple[bool, float]
"""Whether the tokens were taken, and the tokens left."""


@dataclass(slots=True)
class _Take:
    bucket: str
    args: tuple[float, int, float, int]
    answer: asyncio.Future[Answer | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class RedisLink:
    """The limits' connection to Redis, and whether Redis answers."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = aioredis.from_url(
            url,
            socket_connect_timeout=TIMEOUT_SECONDS,
            socket_timeout=TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),  # a request never waits for retries: it counts locally
        )
        self._script = self._client.register_script(SCRIPT)
        self._clock = clock
        self._retry_at: float | None = None
        """None while Redis answers; else when one request may try it again."""
        self._trying = False
        self._waiting: list[_Take] = []
        """Buckets the next call takes (a call is due whenever there are some)."""
        self._call_due = False
        self._calls: set[asyncio.Task[None]] = set()
        self._in_flight = 0

    async def take(self, bucket: str, rate: float, burst: int, cost: float) -> Answer | None:
        """Take ``cost`` tokens (0: none) from ``bucket`` in Redis: whether they were there, and
        the tokens left; None when Redis cannot be used now."""
        if not self._usable():
            return None
        take = _Take(bucket, (rate, burst, cost, math.ceil(burst / rate * 1000) + 1000))
        self._waiting.append(take)
        if self._in_flight or self._call_due:  # busy: join the next call
            self._call_soon()
            return await take.answer
        await self._call()  # alone: no need to wait for others
        return take.answer.result()

    async def close(self) -> None:
        """Stop the calls in flight (their requests count locally) and close the connections."""
        await cancel_and_wait(*self._calls)
        for take in self._waiting:  # those of a call cancelled before it began
            if not take.answer.done():
                take.answer.set_result(None)
        self._waiting.clear()
        await self._client.aclose()

    def _call_soon(self) -> None:
        """Make sure a call will take the waiting buckets (with those that join them meanwhile)."""
        if not self._call_due:
            self._call_due = True
            call = asyncio.create_task(self._call(), name="zapgate-shared-limits")
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    async def _call(self) -> None:
        self._call_due = False
        takes, self._waiting = self._waiting[:MOST_PER_CALL], self._waiting[MOST_PER_CALL:]
        if self._waiting:
            self._call_soon()
        answers: list[Answer | None] = [None] * len(takes)
        self._in_flight += 1
        try:
            replies = await self._script(
                keys=[take.bucket for take in takes],
                args=[value for take in takes for value in take.args],
            )
        except (RedisError, OSError) as error:
            self._failed(error)
        except BaseException:
            self._trying = False  # cancelled: a later request tries
            raise
        else:
            self._answered()
            answers = [(bool(replies[i]), float(replies[i + 1])) for i in range(0, len(replies), 2)]
        finally:
            self._in_flight -= 1
            for take, answer in zip(takes, answers, strict=True):
                if not take.answer.done():
                    take.answer.set_result(answer)

    def _usable(self) -> bool:
        if self._retry_at is None:
            return True
        if self._trying or self._clock() < self._retry_at:
            return False
        self._trying = True  # this request tries Redis; the others keep counting locally
        return True

    def _failed(self, error: BaseException) -> None:
        if self._retry_at is None:
            log.warning(
                "Redis is unreachable (%s): each node limits request rates and failed "
                "authentications on its own until it answers",
                type(error).__name__,
            )
        self._retry_at = self._clock() + RETRY_SECONDS
        self._trying = False

    def _answered(self) -> None:
        if self._retry_at is not None:
            log.info("Redis answers again: request rates are counted across the cluster")
        self._retry_at = None
        self._trying = False


class SharedBuckets:
    """One kind of bucket (``kind``: requests of a key, failures of an address) in Redis, copied
    into ``local``, which counts instead while Redis is unreachable."""

    def __init__(self, link: RedisLink, kind: str, local: TokenBuckets) -> None:
        self._link = link
        self._prefix = f"{PREFIX}{kind}:"
        self.local = local

    async def take(self, key: str, rate: float, burst: int, cost: float = 1.0) -> Decision:
        """``TokenBuckets.take`` counted with every node."""
        answer = await self._link.take(self._prefix + key, rate, burst, cost)
        if answer is None:
            return self.local.take(key, rate, burst, cost)
        taken, tokens = answer
        self.local.put(key, tokens)
        return decision(taken, tokens, rate, burst, cost)

    async def peek(self, key: str, rate: float, burst: int) -> float:
        """``TokenBuckets.peek`` counted with every node."""
        answer = await self._link.take(self._prefix + key, rate, burst, 0)
        if answer is None:
            return self.local.peek(key, rate, burst)
        self.local.put(key, answer[1])
        return answer[1]
