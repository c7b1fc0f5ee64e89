"""Cluster mode: calls to the node that runs a session, through Redis.

A lifecycle or simulator call (start, stop, restart, logout, delete, QR, pairing code,
simulated scan or inbound message) must act on the session's engine, which runs on one node
only. The node that got the HTTP request asks the lease owner through Redis and answers with
what the owner answered, errors included (a ``SessionNotReady`` there is a 409 here too).

Requests go to ``zapgate:control:<node>``, answers to ``zapgate:answer:<node>``, as JSON. A node
that no one listens for, or that does not answer within ``ANSWER_SECONDS``, makes the call
``Unavailable`` (503): the caller may retry, and by then the session may have moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate import errors
from zapgate.cluster import pubsub, repository
from zapgate.cluster.repository import Key
from zapgate.ids import new_id
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)
ANSWER_SECONDS = 30.0
"""How long a call waits for the owner (a WPPConnect pairing code can take a while)."""
Serve = Callable[[str, str, str, dict[str, Any]], Awaitable[Any]]
"""Runs an operation here: (op, tenant, session, args) -> a JSON-able result."""


class ControlChannel:
    """Asks other nodes to act on the sessions they run, and acts on what they ask of this one."""

    def __init__(self, url: str, database: AsyncEngine, node: str) -> None:
        self._client = aioredis.from_url(
            url, socket_connect_timeout=5, socket_keepalive=True, health_check_interval=10
        )
        self._database = database
        self._node = node
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._serving: set[asyncio.Task[None]] = set()
        self.served = 0

    @staticmethod
    def requests_of(node: str) -> str:
        return f"zapgate:control:{node}"

    @staticmethod
    def answers_of(node: str) -> str:
        return f"zapgate:answer:{node}"

    async def start(self, serve: Serve) -> None:
        """Serve other nodes' calls with ``serve`` (subscribed before it returns)."""
        subscription = await self._subscribe()
        self._task = asyncio.create_task(
            pubsub.listen(
                subscription,
                self._subscribe,
                lambda message: self._handle(message, serve),
                "control channel",
            ),
            name="zapgate-control",
        )

    async def stop(self) -> None:
        await cancel_and_wait(self._task, *self._serving)
        self._task = None
        for future in self._waiting.values():
            future.cancel()
        await self._client.aclose()

    async def owners(self, keys: list[Key]) -> dict[Key, str]:
        """The nodes holding live leases of ``keys`` (a key without one runs nowhere)."""
        return await repository.all_tenants_owners(self._database, keys)

    async def ask(
        self,
        node: str,
        op: str,
        tenant: str,
        session: str,
        args: dict[str, Any] | None = None,
        seconds: float | None = None,
    ) -> Any:
        """Run ``op`` on ``node`` and return its result, or raise the error it raised (or
        Unavailable when it does not answer within ``seconds``)."""
        call_id = new_id("call")
        request = {
            "id": call_id,
            "from": self._node,
            "op": op,
            "tenant": tenant,
            "session": session,
            "args": args or {},
        }
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        try:
            try:
                heard = await self._client.publish(self.requests_of(node), orjson.dumps(request))
            except (RedisError, OSError) as error:
                raise errors.Unavailable(f"cannot reach node {node!r}: {error}") from None
            if not heard:
                raise errors.Unavailable(f"node {node!r}, which runs {session!r}, is not listening")
            try:
                async with asyncio.timeout(seconds or ANSWER_SECONDS):
                    answer = await future
            except TimeoutError:
                raise errors.Unavailable(f"node {node!r} did not answer in time") from None
        finally:
            self._waiting.pop(call_id, None)
        if "error" in answer:
            raise _error(answer["error"])
        return answer.get("result")

    async def _subscribe(self) -> aioredis.client.PubSub:
        subscription = self._client.pubsub(ignore_subscribe_messages=True)
        await subscription.subscribe(self.requests_of(self._node), self.answers_of(self._node))
        return subscription

    def _handle(self, message: dict[str, Any], serve: Serve) -> None:
        channel = message.get("channel")
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        try:
            body = orjson.loads(message["data"])
        except (orjson.JSONDecodeError, TypeError, KeyError):
            return
        if channel == self.answers_of(self._node):
            future = self._waiting.get(str(body.get("id")))
            if future is not None and not future.done():
                future.set_result(body)
            return
        task = asyncio.create_task(self._serve(body, serve))
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _serve(self, request: dict[str, Any], serve: Serve) -> None:
        answer: dict[str, Any] = {"id": request.get("id")}
        try:
            answer["result"] = await serve(
                str(request["op"]),
                str(request["tenant"]),
                str(request["session"]),
                dict(request.get("args") or {}),
            )
        except errors.AppError as error:
            answer["error"] = {"type": type(error).__name__, "detail": str(error)}
        except Exception as error:
            log.exception("a call from node %s failed", request.get("from"))
            answer["error"] = {"type": "Unavailable", "detail": type(error).__name__}
        self.served += 1
        try:
            await self._client.publish(self.answers_of(str(request["from"])), orjson.dumps(answer))
        except (RedisError, OSError) as error:
            log.warning("could not answer node %s: %s", request.get("from"), error)


def _error(raised: dict[str, Any]) -> errors.AppError:
    """The error the owner raised, as the same class here (Unavailable if unknown)."""
    kind = getattr(errors, str(raised.get("type")), None)
    detail = str(raised.get("detail"))
    if isinstance(kind, type) and issubclass(kind, errors.AppError):
        with contextlib.suppress(TypeError):
            return kind(detail)
    return errors.Unavailable(detail)
