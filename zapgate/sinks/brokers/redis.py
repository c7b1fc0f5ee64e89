"""Redis Streams through redis.asyncio: ``XADD key MAXLEN ~ maxlen * id <id> event <body> ...``.

One connection per broker (``single_connection_client``) and no retries inside redis-py: a failed
XADD is reported, the connection dropped, and the dispatcher decides when to try again. The XADD
reply is the confirmation (Redis keeps the entry in memory; durability is the server's config).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from yarl import URL

from zapgate.sinks.brokers.base import (
    REFUSED_CREDENTIALS,
    BrokerError,
    Guard,
    LazyBroker,
    checked_url,
    network_reason,
)

RESERVED_FIELDS = ("id", "event")
"""Fields the adapter writes itself; a header of the same name is left out."""


class RedisStreams(LazyBroker["aioredis.Redis"]):
    """Appends to the stream named by the target, at ``config["url"]``."""

    def __init__(self, config: dict[str, Any], guard: Guard, timeout_seconds: float) -> None:
        super().__init__(guard, timeout_seconds)
        self._url = URL(config["url"])
        self._maxlen = int(config["maxlen"])

    async def _open(self) -> aioredis.Redis:
        url = await checked_url(self._url, self._guard, 6379, self._url.scheme == "rediss")
        client = aioredis.Redis.from_url(
            str(url),
            single_connection_client=True,
            socket_connect_timeout=self._timeout,
            socket_timeout=self._timeout,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        return client

    async def _send(
        self,
        link: aioredis.Redis,
        target: str,
        body: bytes,
        message_id: str,
        headers: dict[str, str],
    ) -> None:
        fields: dict[str | bytes, str | bytes] = {"id": message_id, "event": body}
        fields.update((k, v) for k, v in headers.items() if k not in RESERVED_FIELDS)
        await link.xadd(target, fields, maxlen=self._maxlen, approximate=True)  # type: ignore[arg-type]

    def _alive(self, link: aioredis.Redis) -> bool:
        return link.connection is not None and link.connection.is_connected

    async def _close(self, link: aioredis.Redis) -> None:
        await link.aclose()

    def _map(self, error: Exception, connecting: bool) -> BrokerError | None:
        if isinstance(error, errors.AuthenticationError):
            return BrokerError(REFUSED_CREDENTIALS, refused=True)
        if isinstance(error, errors.NoPermissionError | errors.AuthorizationError):
            return BrokerError(f"the broker refused access: {_first_line(error)}", refused=True)
        if isinstance(error, errors.ResponseError):
            if str(error).startswith("WRONGTYPE"):
                return BrokerError("the key holds a value that is not a stream")
            return BrokerError(f"the broker refused the command: {_first_line(error)}")
        if isinstance(error, errors.TimeoutError):
            return BrokerError(f"timed out after {self._timeout:g} s")
        if isinstance(error, errors.ConnectionError):
            return BrokerError(network_reason(error, connecting))
        return None


def _first_line(error: Exception) -> str:
    """A Redis server's error reply (never an address: those come as ConnectionError)."""
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__
