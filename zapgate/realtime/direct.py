"""Direct websocket writes: Engine.IO packets go straight onto a websocket's transport.

engine.io puts every outgoing packet on the socket's queue; a writer task per socket takes
them one by one and hands each to the ASGI server, which frames it and makes one ``write``
system call. With 100 sockets that is about 40 µs of CPU per socket per packet. Here a socket
whose websocket is known writes each packet as a ready frame (encoded once for all sockets,
since engine.io shares one packet object between the sockets of an emit) into a per-socket
buffer, and every buffer is written with one ``write`` at the end of the loop iteration: a
burst of events costs one system call per socket, not one per event.

Order is kept because a socket is either direct or queued, and only ever goes from direct to
queued: it becomes direct right after its writer task has sent the Engine.IO ``open`` packet
(its queue is then empty and the writer idle), and it falls back to the queue for good as soon
as its transport pushes back (the write buffer is full, or a send of the writer is waiting),
so what was written directly always precedes what the writer sends later. A slow reader then
fills its queue, where :class:`~zapgate.realtime.backlog.BacklogWatch` sees it.

Only uvicorn's ``websockets-sansio`` protocol is written to directly (its transport and flow
control are read from the ASGI ``send`` callable's protocol); with any other server, or a
socket that upgraded from long-polling, everything goes through engine.io's writer as before.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import engineio
import socketio
from engineio import packet as eio_packet
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UVICORN_OPTIONS: dict[str, Any] = {"ws": "websockets-sansio", "ws_per_message_deflate": False}
"""uvicorn's websocket settings for zapgate: the protocol this module writes to, and no
per-message compression (socket.io's own default too): compressing every frame for every
socket cost more CPU than the rest of the fan-out."""

OPCODE_TEXT = 0x81
"""FIN + text frame."""
OPCODE_BINARY = 0x82
"""FIN + binary frame."""


def frame(payload: bytes, first: int) -> bytes:
    """A complete, unmasked websocket frame (server to client) carrying ``payload``."""
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size < 1 << 16:
        header = bytes((first, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, 127)) + size.to_bytes(8, "big")
    return header + payload


def packet_frame(packet: Any) -> bytes:
    """The frame of an Engine.IO packet, cached on the packet (one encoding per emit)."""
    cached: bytes | None = getattr(packet, "zapgate_frame", None)
    if cached is not None:
        return cached
    encoded = packet.encode()
    if isinstance(encoded, str):
        data = frame(encoded.encode("utf-8"), OPCODE_TEXT)
    else:
        data = frame(bytes(encoded), OPCODE_BINARY)
    packet.zapgate_frame = data
    return data


class Link:
    """One websocket's transport, written to directly while it keeps up."""

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self._pending: list[bytes] = []
        self.busy = 0
        """Sends of engine.io's writer that have not returned (one waiting = push-back)."""
        self.closed = False

    @staticmethod
    def usable(send: Send) -> Any | None:
        """The uvicorn protocol behind ``send``, if it is one this module can write to."""
        protocol = getattr(send, "__self__", None)
        needed = ("transport", "writable", "close_sent", "handshake_complete", "disconnected")
        if protocol is None or not all(hasattr(protocol, name) for name in needed):
            return None
        return protocol

    def write(self, data: bytes) -> bool:
        """Buffer frames for this iteration's write; False if they must be queued instead."""
        pending = self._pending
        if pending:  # accepted earlier in this iteration: nothing can have changed since
            pending.append(data)
            return True
        protocol = self._protocol
        if (
            self.closed
            or self.busy
            or not protocol.writable.is_set()
            or protocol.close_sent
            or protocol.disconnected
            or protocol.transport.is_closing()
        ):
            return False
        asyncio.get_running_loop().call_soon(self.flush)
        pending.append(data)
        return True

    def flush(self) -> None:
        """Write everything buffered in one call (dropped if the connection is going away)."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        transport = self._protocol.transport
        if not self.closed and not self._protocol.close_sent and not transport.is_closing():
            transport.write(data)


class DirectQueue(asyncio.Queue[Any]):
    """An Engine.IO socket's outgoing queue that writes through its :class:`Link`, if it has
    one that keeps up; once a packet is queued, every later one is too."""

    link: Link | None = None

    def put_nowait(self, item: Any) -> None:
        """Write a message packet directly, or queue it. Control packets (ping, close, ...) and
        ``None`` (the writer's stop) always go through the queue: engine.io's writer gives up
        on a socket whose queue stayed empty for ``ping_interval + ping_timeout``, so the pings
        must keep reaching it (they have no order to keep with the messages)."""
        link = self.link
        if link is not None and item is not None and item.packet_type == eio_packet.MESSAGE:
            if link.write(packet_frame(item)):
                return
            self.link = None
        elif item is None:
            self.link = None
        super().put_nowait(item)

    def put_frames(self, packets: list[Any], frames: bytes) -> None:
        """Put ``packets`` whose frames, joined, are ``frames`` (one emit's packets)."""
        link = self.link
        if link is not None:
            if link.write(frames):
                return
            self.link = None
        for packet in packets:
            super().put_nowait(packet)


class DirectEngineIO(engineio.AsyncServer):  # type: ignore[misc]
    """engine.io's server with :class:`DirectQueue` queues."""

    def create_queue(self, *args: Any, **kwargs: Any) -> asyncio.Queue[Any]:
        """A queue that can write through a link."""
        return DirectQueue(*args, **kwargs)


class DirectSocketIO(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server on :class:`DirectEngineIO`."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return DirectEngineIO


class DirectWebsockets:
    """ASGI middleware: links each new Engine.IO websocket's socket to its transport."""

    def __init__(self, app: ASGIApp, engineio_server: Any, path: str = "/socket.io/") -> None:
        self._app = app
        self._engineio = engineio_server
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        protocol = Link.usable(send) if scope["type"] == "websocket" else None
        if protocol is None or not str(scope.get("path", "")).startswith(self._path):
            await self._app(scope, receive, send)
            return
        link = Link(protocol)
        queue: list[DirectQueue] = []
        sent = 0

        async def send_through(message: Message) -> None:
            nonlocal sent
            link.flush()  # what was written directly goes first
            link.busy += 1
            try:
                await send(message)
            finally:
                link.busy -= 1
            sent += 1
            if sent == 2:  # websocket.accept, then engine.io's open packet
                self._attach(link, message, queue)

        try:
            await self._app(scope, receive, send_through)
        finally:
            link.closed = True
            if queue and queue[0].link is link:
                queue[0].link = None

    def _attach(self, link: Link, message: Message, attached: list[DirectQueue]) -> None:
        """After the ``open`` packet went out, let the socket's queue write through ``link``."""
        text = message.get("text") if message["type"] == "websocket.send" else None
        if not text or not text.startswith("0{"):
            return
        try:
            sid = json.loads(text[1:])["sid"]
        except (ValueError, KeyError, TypeError):
            return
        socket = self._engineio.sockets.get(sid)
        queue = getattr(socket, "queue", None)
        if isinstance(queue, DirectQueue) and queue.empty() and not link.busy:
            queue.link = link
            attached.append(queue)
