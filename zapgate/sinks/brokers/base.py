"""What every broker adapter shares: the error, the guard, the protocol and one connection's life.

A ``LazyBroker`` holds at most one connection (its "link"): opened on the first publish, reused
while it lives, dropped after any failure so that the next publish opens a new one. Every publish
(connecting included) is bounded by ``timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Generic, Protocol, TypeVar

from yarl import URL

log = logging.getLogger(__name__)

REFUSED_CREDENTIALS = "the broker refused the credentials"

Guard = Callable[[str, int], Awaitable[str]]
"""guard(host, port) -> the checked IP address to connect to (raises BrokerError if the address
is not allowed)."""

LinkT = TypeVar("LinkT")


class BrokerError(Exception):
    """A publish failed. str(error) is a reason safe to show the tenant (never a password, never
    what a host resolved to)."""

    def __init__(self, public: str, *, refused: bool = False, returned: bool = False) -> None:
        super().__init__(public)
        self.refused = refused
        """True when the broker refused the credentials or permissions."""
        self.returned = returned
        """True when the broker took the message back (RabbitMQ: no queue's binding takes it):
        the same message would come back again, and the connection is fine."""


class Broker(Protocol):
    """One sink's connection to its broker."""

    async def publish(
        self, target: str, body: bytes, message_id: str, headers: dict[str, str]
    ) -> None:
        """Publish one message; return only once the broker has confirmed it durably. Raise
        BrokerError on any failure (timeout included), after dropping the connection so the next
        call reconnects."""
        ...

    async def close(self) -> None:
        """Drop the connection, if any."""
        ...


def endpoint(url: URL, default_port: int) -> tuple[str, int]:
    """The host and port a broker URL names."""
    if not url.host:
        raise BrokerError("the broker URL has no host")
    return url.host, url.explicit_port or default_port


async def checked_url(url: URL, guard: Guard, default_port: int, tls: bool) -> URL:
    """``url`` with its host replaced by the address ``guard`` allows.

    With TLS the host name stays (the certificate is checked against it), so the library resolves
    it again: the guard still runs first, but cannot pin the address the connection goes to.
    """
    host, port = endpoint(url, default_port)
    address = await guard(host, port)
    return url if tls else url.with_host(address)


def network_reason(error: BaseException, connecting: bool) -> str:
    """'could not connect: connection refused' and the like, from the error or what caused it.
    Never ``str(error)``: asyncio puts the address it tried in there."""
    stage = "could not connect" if connecting else "the connection failed"
    for cause in (error, error.__cause__, error.__context__):
        if isinstance(cause, socket.gaierror):
            return f"{stage}: the host name did not resolve"
        if isinstance(cause, TimeoutError):
            return f"{stage}: timed out"
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and 0 < cause.errno < 200:
            return f"{stage}: {os.strerror(cause.errno).lower()}"
    return f"{stage}: the connection was closed"


class LazyBroker(ABC, Generic[LinkT]):
    """A broker over one lazily opened link; subclasses say how to open, use and close it."""

    def __init__(self, guard: Guard, timeout_seconds: float) -> None:
        self._guard = guard
        self._timeout = timeout_seconds
        self._link: LinkT | None = None
        self._opening = asyncio.Lock()

    async def publish(
        self, target: str, body: bytes, message_id: str, headers: dict[str, str]
    ) -> None:
        """See ``Broker.publish``. A cancelled or returned publish keeps the link (the libraries
        leave it usable, and the lanes sharing it go on); any other failure drops it."""
        link: LinkT | None = None
        try:
            async with asyncio.timeout(self._timeout):
                link = await self._connected()
                await self._send(link, target, body, message_id, headers)
        except Exception as error:
            public = self._public(error, connecting=link is None)
            log.debug("publish failed (%s): %s", type(error).__name__, public)
            if link is not None and not public.returned:
                await self._drop(link)
            raise public from None

    async def close(self) -> None:
        """Drop the link, if any."""
        async with self._opening:
            link, self._link = self._link, None
        if link is not None:
            await self._quietly_close(link)

    async def _connected(self) -> LinkT:
        async with self._opening:
            if self._link is not None and not self._alive(self._link):
                link, self._link = self._link, None
                await self._quietly_close(link)
            if self._link is None:
                self._link = await self._open()
            return self._link

    async def _drop(self, link: LinkT) -> None:
        if self._link is link:
            self._link = None
        await self._quietly_close(link)

    async def _quietly_close(self, link: LinkT) -> None:
        with suppress(Exception):
            async with asyncio.timeout(self._timeout):
                await self._close(link)

    def _public(self, error: Exception, connecting: bool) -> BrokerError:
        if isinstance(error, BrokerError):
            return error
        mapped = self._map(error, connecting)
        if mapped is not None:
            return mapped
        if isinstance(error, TimeoutError):
            return BrokerError(f"timed out after {self._timeout:g} s")
        if isinstance(error, OSError):
            return BrokerError(network_reason(error, connecting))
        return BrokerError(f"unexpected error from the broker ({type(error).__name__})")

    @abstractmethod
    async def _open(self) -> LinkT:
        """Connect (through the guard) and prepare; close what was opened if this fails."""

    @abstractmethod
    async def _send(
        self, link: LinkT, target: str, body: bytes, message_id: str, headers: dict[str, str]
    ) -> None:
        """Publish one message and wait for the broker's confirmation."""

    @abstractmethod
    def _alive(self, link: LinkT) -> bool:
        """False once the library knows the link is closed."""

    @abstractmethod
    async def _close(self, link: LinkT) -> None:
        """Close the link."""

    @abstractmethod
    def _map(self, error: Exception, connecting: bool) -> BrokerError | None:
        """The library's error as a BrokerError, or None for the generic mapping."""
