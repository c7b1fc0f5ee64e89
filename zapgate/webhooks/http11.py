"""A small HTTP/1.1 client for deliveries: POST, keep-alive, pinned to SSRF-checked addresses.

What a delivery needs and nothing more, at a fraction of a general client's cost per request:

- a connection is opened to an address :func:`ssrf.resolve_checked` returned for the URL's
  host (resolved and checked once per connection, never again by the socket layer), over TLS
  with the host's name verified when the URL is ``https``;
- one request at a time per connection; an idle connection is reused for the same scheme, host
  and port, and closed when the receiver says so, answers HTTP/1.0, or sends more than
  ``RESPONSE_MAX`` bytes (the first ``EXCERPT_BYTES`` of the body are kept);
- a URL is checked by :func:`ssrf.check_url` before its first request (raising
  :class:`ssrf.UnsafeUrl`), and remembered as checked;
- no redirects, no proxies, no decompression, no cookies; the caller bounds the time;
- :meth:`Http11Client.patch` is a POST with another verb (an API's partial update);
- :meth:`Http11Client.get` (a JWKS) reads a whole body of at most a given size, or raises
  :class:`TooLarge`: the same connections, guard and parser as a delivery's POST.

Failures raise :class:`ConnectFailed`, :class:`LookupFailed` or :class:`Disconnected` (what
the reason shown to the tenant is built from), :class:`ssl.SSLError` or :class:`OSError`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote, urlsplit

import httptools

from zapgate.webhooks import ssrf

EXCERPT_BYTES = 1024
RESPONSE_MAX = 64 * 1024
"""Bytes of one response read at most (headers and body); beyond, the connection is closed."""
_SAFE_IN_TARGET = "!#$%&'()*+,/:;=?@[]~"
"""Characters of a URL's path and query sent as they are (with letters, digits and ``_.-``)."""
IDLE_PER_HOST = 64
IDLE_MAX = 1000
"""Idle connections kept in all; the least recently used go first."""


UNREACHABLE = (ssrf.UnsafeUrl, OSError, ssl.SSLError, TimeoutError, ValueError)
"""What a call through :class:`Http11Client` raises when no answer came (a refused address,
the network, TLS, a timeout, a malformed answer)."""


def json_or_none(data: bytes) -> Any:
    """An answer's JSON, or None when it is not JSON."""
    try:
        return json.loads(data)
    except ValueError:
        return None


class ConnectFailed(OSError):
    """No connection could be made to any checked address (``os_error`` says why)."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(os_error.errno, str(os_error))  # for the log only
        self.os_error = os_error


class LookupFailed(OSError):
    """The host name could not be resolved."""


class Disconnected(OSError):
    """The receiver closed the connection before its answer was complete."""


class TooLarge(OSError):
    """An answer to a GET was larger than its limit."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A receiver's answer: status, headers (names lower-case) and the start of its body."""

    status: int
    headers: dict[str, str]
    excerpt: bytes
    whole: bool = True
    """Whether ``excerpt`` is the entire body (always so for a GET)."""


@dataclass(frozen=True, slots=True)
class _Bounds:
    keep: int
    """Bytes of the body kept."""
    read: int
    """Bytes of the answer (head and body) read at most; beyond, the connection is closed."""


_POST_BOUNDS = _Bounds(EXCERPT_BYTES, RESPONSE_MAX)


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str
    port: int
    target: bytes  # path and query, as sent on the request line
    host_header: bytes


@dataclass(slots=True)
class _Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    excerpt: bytearray = field(default_factory=bytearray)
    keep_alive: bool = True
    ended: bool = False
    """The whole answer came (not cut at the read bound)."""
    cut: bool = False
    """Part of the body was not kept."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: feeds what arrives to a response parser."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._response = _Response()
        self._done: asyncio.Future[_Response] | None = None
        self._bounds = _POST_BOUNDS
        self._received = 0
        self._stray = False
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(Disconnected("the receiver switched protocols"))
            self.close()
            return
        except httptools.HttpParserError as error:
            self._fail(Disconnected(f"malformed answer: {error}"))
            self.close()
            return
        if self._stray:  # an answer nobody asked for: the next one could not be trusted
            self._fail(Disconnected("the receiver sent an answer nobody asked for"))
            self.close()
            return
        if self._received > self._bounds.read and self._done is not None and not self._done.done():
            if self._response.status:  # the head is in: keep what was read, drop the rest
                self._response.keep_alive = False
                self._done.set_result(self._response)
            else:
                self._fail(Disconnected("the answer's head is too large"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response, done = self._response, self._done
        if exc is None and done is not None and not done.done() and _ends_at_close(response):
            response.keep_alive = False  # a body without a length ends where the connection does
            response.ended = True
            done.set_result(response)
            return
        self._fail(Disconnected("connection closed") if exc is None else exc)

    @property
    def received(self) -> int:
        """Bytes received for the current request."""
        return self._received

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self._done is None or self._done.done():
            self._stray = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self._response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._response.status = self._parser.get_status_code()
        self._response.keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        room = self._bounds.keep - len(self._response.excerpt)
        if room > 0:
            self._response.excerpt += body[:room]
        if len(body) > room:
            self._response.cut = True

    def on_message_complete(self) -> None:
        if self._done is not None and not self._done.done():
            self._response.ended = True
            self._done.set_result(self._response)
        self._response = _Response()  # what follows (if anything) must not touch the answer

    # use
    async def exchange(self, request: bytes, bounds: _Bounds = _POST_BOUNDS) -> _Response:
        """Send one request and wait for its whole answer (or its first ``bounds.read`` bytes)."""
        assert self._transport is not None
        if self.closed:
            raise Disconnected("connection closed")
        self._response = _Response()
        self._bounds = bounds
        self._received = 0
        self._done = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._done

    def _fail(self, error: BaseException) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(error)

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class Http11Client:
    """Posts (and gets) over kept-alive connections; see the module."""

    def __init__(self, allowlist: ssrf.Allowlist, tls: ssl.SSLContext | None = None) -> None:
        self._allowlist = allowlist
        self._tls = tls or ssl.create_default_context()
        self._targets: dict[str, _Target] = {}
        self._idle: OrderedDict[tuple[str, str, int], list[_Connection]] = OrderedDict()
        self._idle_count = 0

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], keep: int = EXCERPT_BYTES
    ) -> Answer:
        """POST ``body``, keeping the first ``keep`` bytes of the answer's body; the caller
        bounds the time (cancelling closes the connection)."""
        return await self._with_body(b"POST", url, body, headers, keep)

    async def patch(
        self, url: str, body: bytes, headers: dict[str, str], keep: int = EXCERPT_BYTES
    ) -> Answer:
        """PATCH ``body`` (an API's partial update), its answer kept and bounded as a POST's."""
        return await self._with_body(b"PATCH", url, body, headers, keep)

    async def _with_body(
        self, method: bytes, url: str, body: bytes, headers: dict[str, str], keep: int
    ) -> Answer:
        target = self._target(url)
        bounds = _POST_BOUNDS if keep == EXCERPT_BYTES else _Bounds(keep, max(keep, RESPONSE_MAX))
        return await self._send(target, _request(method, target, body, headers), bounds)

    async def get(self, url: str, headers: dict[str, str], limit: int) -> Answer:
        """GET a body whole; :class:`TooLarge` when the answer (head and body) exceeds ``limit``
        bytes. A redirect is an answer like any other (not followed); the caller bounds the time.
        """
        target = self._target(url)
        answer = await self._send(
            target, _request(b"GET", target, None, headers), _Bounds(limit, limit)
        )
        if not answer.whole:
            raise TooLarge(f"the answer is larger than {limit} bytes")
        return answer

    async def _send(self, target: _Target, request: bytes, bounds: _Bounds) -> Answer:
        connection = self._take(target)
        if connection is None:
            connection = await self._connect(target)
        elif (response := await self._try_kept(connection, request, bounds)) is not None:
            return self._finish(target, connection, response)
        else:  # the receiver had closed the kept-alive connection: a new one, once
            connection = await self._connect(target)
        try:
            response = await connection.exchange(request, bounds)
        except BaseException:
            connection.close()
            raise
        return self._finish(target, connection, response)

    async def _try_kept(
        self, connection: _Connection, request: bytes, bounds: _Bounds
    ) -> _Response | None:
        """The answer over a kept-alive connection, or None if it was closed before a byte of
        one came (a receiver may close an idle connection at any time)."""
        try:
            return await connection.exchange(request, bounds)
        except (Disconnected, ConnectionError):
            connection.close()
            if connection.received:
                raise
            return None
        except BaseException:
            connection.close()
            raise

    def _finish(self, target: _Target, connection: _Connection, response: _Response) -> Answer:
        if response.keep_alive and not connection.closed:
            self._give_back(target, connection)
        else:
            connection.close()
        whole = response.ended and not response.cut
        return Answer(response.status, response.headers, bytes(response.excerpt), whole)

    async def close(self) -> None:
        """Close every idle connection."""
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        self._idle_count = 0

    def _target(self, url: str) -> _Target:
        """The URL parsed, once it passed :func:`ssrf.check_url`; kept, as that check reads
        only the URL and the allowlist (what the host resolves to is checked per connection)."""
        found = self._targets.get(url)
        if found is None:
            ssrf.check_url(url, self._allowlist)
            found = _parse(url)
            if len(self._targets) >= IDLE_MAX * 16:
                self._targets.clear()
            self._targets[url] = found
        return found

    def _take(self, target: _Target) -> _Connection | None:
        connections = self._idle.get((target.scheme, target.host, target.port))
        while connections:
            connection = connections.pop()
            self._idle_count -= 1
            if not connection.closed:
                return connection
        return None

    def _give_back(self, target: _Target, connection: _Connection) -> None:
        key = (target.scheme, target.host, target.port)
        connections = self._idle.setdefault(key, [])
        self._idle.move_to_end(key)
        if len(connections) >= IDLE_PER_HOST:
            connection.close()
            return
        connections.append(connection)
        self._idle_count += 1
        while self._idle_count > IDLE_MAX:
            oldest_key, oldest = next(iter(self._idle.items()))
            if oldest:
                oldest.pop(0).close()
                self._idle_count -= 1
            if not oldest:
                del self._idle[oldest_key]

    async def _connect(self, target: _Target) -> _Connection:
        try:
            addresses = await ssrf.resolve_checked(target.host, target.port, self._allowlist)
        except socket.gaierror as error:
            raise LookupFailed(error.errno, str(error)) from error  # for the log only
        loop = asyncio.get_running_loop()
        tls = self._tls if target.scheme == "https" else None
        failure: OSError | None = None
        for address in addresses:  # pinned: only the checked addresses, no second lookup
            try:
                _transport, connection = await loop.create_connection(
                    _Connection,
                    address,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host.strip("[]") if tls else None,
                )
            except ssl.SSLError:
                raise
            except OSError as error:
                failure = error
                continue
            return connection
        assert failure is not None
        raise ConnectFailed(failure)


def _ends_at_close(response: _Response) -> bool:
    """Whether the answer's head is in and its body is delimited by the connection's end."""
    if not response.status:
        return False
    headers = response.headers
    return "content-length" not in headers and "chunked" not in headers.get("transfer-encoding", "")


def _parse(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").encode("idna").decode("ascii")  # an IDN's ASCII form
    port = parts.port or ssrf.SCHEMES[scheme]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    path = quote(path, safe=_SAFE_IN_TARGET)  # UTF-8 percent-encoded; escapes kept as sent
    shown = f"[{host}]" if ":" in host else host
    if port != ssrf.SCHEMES[scheme]:
        shown = f"{shown}:{port}"
    _refuse_line_breaks(path)
    return _Target(scheme, host, port, path.encode("ascii"), shown.encode("ascii"))


def _request(method: bytes, target: _Target, body: bytes | None, headers: dict[str, str]) -> bytes:
    """The request's bytes; ``body`` None: no body and no ``content-length`` (a GET)."""
    lines = [method, b" ", target.target, b" HTTP/1.1\r\nhost: ", target.host_header, b"\r\n"]
    for name, value in headers.items():
        _refuse_line_breaks(name, value)
        lines += [name.encode("latin-1"), b": ", value.encode("utf-8"), b"\r\n"]
    if body is None:
        return b"".join([*lines, b"\r\n"])
    lines += [b"content-length: ", str(len(body)).encode("ascii"), b"\r\n\r\n", body]
    return b"".join(lines)


def _refuse_line_breaks(*texts: str) -> None:
    for text in texts:
        if "\r" in text or "\n" in text or "\0" in text:
            raise ValueError("a header or the URL contains a line break")
