"""Loopback webhook receivers for the webhooks workload: one process answers 200 to every POST.

Run as ``python -m bench.receiver --port N --dump PATH --config CONFIG``, where ``CONFIG`` is
JSON ``{"secrets": [...], "ports": [...]}``: receiver ``i`` is ``POST /r/{i}``, verifies with
``secrets[i]`` and is served on ``--port`` and on every extra port listed (so subscriptions can
be spread over distinct origins). Without ``--config``, one receiver at ``POST /hook`` takes its
secret from ``BENCH_WEBHOOK_SECRET``.

For every delivery it records the receiver's index, the ``webhook-id``, the envelope's ``seq``
and ``session``, the receive time and the lag (receive time minus the envelope ``timestamp``),
and verifies the Standard Webhooks signature. ``GET /stats`` serves live counts; on SIGTERM
every record (and one sample body) is written to ``PATH`` as JSON, read back by
:func:`load_dump`. HTTP is a bare asyncio protocol over httptools (~45 us of CPU a request
under load, a third of an aiohttp app's), so one core takes 5,000 deliveries/s with room left.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import cast

import httptools
import orjson
import uvloop

from zapgate.webhooks import signing

SECRET_ENV = "BENCH_WEBHOOK_SECRET"
HOST = "127.0.0.1"
LISTEN_BACKLOG = 1024


@dataclass(frozen=True)
class Record:
    """One delivery as received by receiver ``subscription``."""

    subscription: int
    webhook_id: str
    seq: int
    session: str | None
    received_at: float
    lag_s: float


@dataclass(frozen=True)
class Dump:
    """Everything one receiver process saw."""

    records: list[Record]
    verify_failures: int
    bad_bodies: int
    sample_body: bytes | None
    listening_at: float
    """When every port was listening (wall clock): the receivers were reachable from then."""


@dataclass
class Tally:
    """The receivers' state (one per process)."""

    secrets: list[str]
    listening_at: float = 0.0
    records: list[Record] = field(default_factory=list)
    ids: set[tuple[int, str]] = field(default_factory=set)
    verified: int = 0
    verify_failures: int = 0
    bad_bodies: int = 0
    sample_body: bytes | None = None

    def stats(self) -> dict[str, int]:
        """Live counts for ``GET /stats``; ``unique`` counts (receiver, webhook-id) pairs."""
        return {
            "requests": len(self.records) + self.bad_bodies,
            "unique": len(self.ids),
            "verified": self.verified,
            "verify_failures": self.verify_failures,
            "bad_bodies": self.bad_bodies,
        }


def verify(tally: Tally, index: int, headers: Mapping[str, str], body: bytes) -> None:
    """Check the delivery's signature with receiver ``index``'s secret, counting the outcome."""
    try:
        signing.verify(tally.secrets[index], headers, body)
    except signing.SignatureError:
        tally.verify_failures += 1
    else:
        tally.verified += 1


def record(tally: Tally, index: int, webhook_id: str, body: bytes, received_at: float) -> None:
    """Parse the envelope and store the delivery, or count it as a bad body."""
    try:
        envelope = orjson.loads(body)
        created = datetime.fromisoformat(envelope["timestamp"]).timestamp()
        seq = int(envelope["seq"])
        session = envelope.get("session")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        tally.bad_bodies += 1
        return
    lag = received_at - created
    tally.records.append(Record(index, webhook_id, seq, session, received_at, lag))
    tally.ids.add((index, webhook_id))
    if tally.sample_body is None:
        tally.sample_body = body


def response(status: int, body: bytes, content_type: str = "text/plain") -> bytes:
    """A whole HTTP/1.1 response."""
    reason = HTTPStatus(status).phrase
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n"
    return f"{head}content-length: {len(body)}\r\n\r\n".encode() + body


OK = response(200, b"ok")
READY = response(200, b"ready")
NOT_FOUND = response(404, b"not found")
BAD_REQUEST = response(400, b"bad request")


def hook_index(path: bytes, receivers: int) -> int | None:
    """Receiver of ``POST path``: ``/r/{i}``, or ``/hook`` for receiver 0; None if none."""
    if path == b"/hook":
        return 0
    digits = path.removeprefix(b"/r/")
    if digits == path or not digits.isdigit() or int(digits) >= receivers:
        return None
    return int(digits)


def answer(
    tally: Tally, method: bytes, url: bytes, headers: Mapping[str, str], body: bytes
) -> bytes:
    """The response to one request (deliveries are verified and recorded first)."""
    path = url.partition(b"?")[0]
    if method == b"POST":
        index = hook_index(path, len(tally.secrets))
        if index is None:
            return NOT_FOUND
        received_at = time.time()
        verify(tally, index, headers, body)
        record(tally, index, headers.get(signing.ID_HEADER, ""), body, received_at)
        return OK
    if path == b"/stats":
        return response(200, orjson.dumps(tally.stats()), "application/json")
    return READY if path == b"/ready" else NOT_FOUND


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, parsed by httptools; each request is answered as soon
    as it is complete."""

    def __init__(self, tally: Tally) -> None:
        self._tally = tally
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._transport.write(BAD_REQUEST)
            self._transport.close()

    def on_message_begin(self) -> None:
        self._url, self._headers, self._body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        assert self._transport is not None
        method, body = self._parser.get_method(), b"".join(self._body)
        self._transport.write(answer(self._tally, method, self._url, self._headers, body))
        if not self._parser.should_keep_alive():
            self._transport.close()


def dump_payload(tally: Tally) -> dict[str, object]:
    """JSON-ready view of everything received."""
    sample = tally.sample_body.decode("utf-8", "replace") if tally.sample_body else None
    return {
        "records": [
            [r.subscription, r.webhook_id, r.seq, r.session, r.received_at, r.lag_s]
            for r in tally.records
        ],
        "verify_failures": tally.verify_failures,
        "bad_bodies": tally.bad_bodies,
        "sample_body": sample,
        "listening_at": tally.listening_at,
    }


def load_dump(path: Path) -> Dump:
    """Read back what a stopped receiver process wrote."""
    data = json.loads(path.read_text())
    records = [
        Record(int(i), str(w), int(s), None if n is None else str(n), float(t), float(lag))
        for i, w, s, n, t, lag in data["records"]
    ]
    sample = data["sample_body"]
    return Dump(
        records,
        int(data["verify_failures"]),
        int(data["bad_bodies"]),
        sample.encode("utf-8") if sample is not None else None,
        float(data["listening_at"]),
    )


def write_config(path: Path, secrets: list[str], ports: list[int]) -> Path:
    """Write the ``--config`` file: receiver ``i`` verifies with ``secrets[i]``; extra ports."""
    path.write_text(json.dumps({"secrets": secrets, "ports": ports}))
    return path


def listening(port: int) -> socket.socket:
    """A socket listening on ``HOST:port`` (address reuse on: a restart binds the port at once)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


async def serve(tally: Tally, sockets: list[socket.socket]) -> None:
    """Answer on every socket until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    servers = [await loop.create_server(lambda: Connection(tally), sock=s) for s in sockets]
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    """Serve on 127.0.0.1 until SIGTERM, then write the dump."""
    parser = argparse.ArgumentParser(prog="python -m bench.receiver", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dump", type=Path, required=True)
    parser.add_argument("--config", type=Path)
    args = parser.parse_args()
    if args.config is None:
        secrets, ports = [os.environ[SECRET_ENV]], []
    else:
        config = json.loads(args.config.read_text())
        secrets, ports = [str(s) for s in config["secrets"]], [int(p) for p in config["ports"]]
    sockets = [listening(port) for port in dict.fromkeys([args.port, *ports])]
    tally = Tally(secrets, listening_at=time.time())
    uvloop.run(serve(tally, sockets))
    args.dump.write_text(json.dumps(dump_payload(tally)))


if __name__ == "__main__":
    main()
