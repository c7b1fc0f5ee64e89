"""NATS JetStream through nats-py: the stream is created if missing, each publish waits for its ack.

The ``Nats-Msg-Id`` header carries the message id, so JetStream drops a re-publish (after a lost
ack) within the stream's duplicate window. nats-py's own reconnecting is off: with
``allow_reconnect=False`` a first connect fails at once, but ``max_reconnect_attempts=0`` means
"for ever" to its server pool, so it is 1 (two quick tries) with no wait between them.
"""

from __future__ import annotations

import asyncio
import logging
import math
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType
from yarl import URL

from zapgate.sinks.brokers.base import (
    REFUSED_CREDENTIALS,
    BrokerError,
    Guard,
    LazyBroker,
    checked_url,
    network_reason,
)
from zapgate.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Link:
    client: Client
    js: JetStreamContext
    trouble: asyncio.Event
    """Set when nats-py closes the client or the server denies a publish: nats-py leaves the
    request in flight until its timeout, so a publish races this."""


class Nats(LazyBroker[_Link]):
    """Publishes into ``config["stream"]`` at ``config["url"]``; the target is the subject."""

    def __init__(self, config: dict[str, Any], guard: Guard, timeout_seconds: float) -> None:
        super().__init__(guard, timeout_seconds)
        self._url = URL(config["url"])
        self._stream = str(config["stream"])
        self._subjects = [str(subject) for subject in config["subjects"]]
        self._last_error: Exception | None = None
        """The last error nats-py reported to its callback (it raises NoServersError instead)."""

    async def _open(self) -> _Link:
        url = await checked_url(self._url, self._guard, 4222, self._url.scheme == "tls")
        self._last_error = None
        trouble = asyncio.Event()
        client = Client()  # not nats.connect(): a failed connect leaves its socket open
        try:
            await client.connect(
                servers=[str(url)],
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                connect_timeout=math.ceil(self._timeout),  # ours bounds it anyway
                name="zapgate sink",
                **self._callbacks(trouble),
            )
            js = client.jetstream(timeout=self._timeout)
            await self._ensure_stream(js)
        except BaseException:
            with suppress(Exception):
                async with asyncio.timeout(self._timeout):
                    await client.close()
            raise
        return _Link(client, js, trouble)

    def _callbacks(self, trouble: asyncio.Event) -> dict[str, Any]:
        """nats-py's callbacks: they log at debug (its defaults print tracebacks), keep the last
        error, and set ``trouble`` when the client closes or the server denies a publish."""

        async def on_error(error: Exception) -> None:
            log.debug("nats: %s", type(error).__name__)
            self._last_error = error
            if _denied(error):
                trouble.set()

        async def on_closed() -> None:
            log.debug("nats: connection closed")
            trouble.set()

        return {"error_cb": on_error, "disconnected_cb": on_closed, "closed_cb": on_closed}

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        """The stream, made if missing; one that lacks the sink's subjects gets them added (a
        sink whose subject changed, or two sinks with other prefixes on one stream)."""
        try:
            info = await js.stream_info(self._stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(
                name=self._stream, subjects=self._subjects, storage=StorageType.FILE
            )
            return
        held = list(info.config.subjects or [])
        missing = [subject for subject in self._subjects if subject not in held]
        if missing:
            info.config.subjects = [*held, *missing]
            await js.update_stream(info.config)

    async def _send(
        self, link: _Link, target: str, body: bytes, message_id: str, headers: dict[str, str]
    ) -> None:
        publish = asyncio.ensure_future(
            link.js.publish(target, body, headers={**headers, "Nats-Msg-Id": message_id})
        )
        trouble = asyncio.ensure_future(link.trouble.wait())
        try:
            await asyncio.wait((publish, trouble), return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(publish, trouble)
        if not publish.done() or publish.cancelled():
            raise nats.errors.ConnectionClosedError
        publish.result()

    def _alive(self, link: _Link) -> bool:
        return bool(link.client.is_connected)

    async def _close(self, link: _Link) -> None:
        await link.client.close()

    def _map(self, error: Exception, connecting: bool) -> BrokerError | None:
        if _denied(self._last_error):
            return BrokerError("the broker refused access (permissions violation)", refused=True)
        if isinstance(error, nats.errors.NoServersError) and self._last_error is not None:
            error = self._last_error
        if isinstance(error, TimeoutError):
            return None  # nats-py's timeouts are ours (the same timeout_seconds)
        refused = isinstance(error, nats.errors.AuthorizationError)
        if refused or _says(error, "authorization violation"):
            return BrokerError(REFUSED_CREDENTIALS, refused=True)
        if isinstance(error, nats.js.errors.NoStreamResponseError):
            return BrokerError("no JetStream stream takes this subject")
        if isinstance(error, nats.js.errors.APIError):
            return BrokerError(f"JetStream refused: {error.description}")
        if isinstance(error, nats.errors.SecureConnRequiredError):
            return BrokerError("the server requires TLS (use a tls:// URL)")
        if isinstance(error, nats.errors.MaxPayloadError):
            return BrokerError("the message is larger than the server's max_payload")
        if isinstance(error, nats.errors.BadSubjectError):
            return BrokerError("the subject is not valid")
        if isinstance(error, OSError | nats.errors.Error):
            return BrokerError(network_reason(error, connecting))
        return None


def _says(error: BaseException | None, words: str) -> bool:
    return error is not None and words in str(error).lower()


def _denied(error: BaseException | None) -> bool:
    """The server's "Permissions Violation" (it keeps the connection but drops the message)."""
    return _says(error, "permissions violation")
