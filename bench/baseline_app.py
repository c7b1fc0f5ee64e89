"""Bare ASGI app (no framework): the floor zapgate is compared against.

``POST /whatsapp/send`` reads the body, parses it with :func:`json.loads` and
answers 200 ``{"success": true}``; ``GET /ready`` answers 200 for readiness.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_OK = b'{"success": true}'
_BAD = b'{"success": false}'


async def _read_body(receive: Receive) -> bytes:
    """Collect the full request body from the ASGI receive channel."""
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = bool(message.get("more_body", False))
    return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes) -> None:
    """Send a complete JSON response."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge lifespan startup and shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _send_message(receive: Receive, send: Send) -> None:
    """Handle ``POST /whatsapp/send``: parse the JSON body, answer success."""
    try:
        json.loads(await _read_body(receive))
    except ValueError:
        await _respond(send, 400, _BAD)
        return
    await _respond(send, 200, _OK)


async def app(scope: Message, receive: Receive, send: Send) -> None:
    """ASGI entry point."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    route = (scope["method"], scope["path"])
    if route == ("POST", "/whatsapp/send"):
        await _send_message(receive, send)
    elif route == ("GET", "/ready"):
        await _respond(send, 200, _OK)
    else:
        await _respond(send, 404, _BAD)
