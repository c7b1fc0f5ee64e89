"""What goes on the wire for one event: ``event`` (the envelope) and, for inbound messages,
the original ``message``."""

from __future__ import annotations

from typing import Any

import socketio

from zapgate.events.model import Event, EventType


def legacy_message(event: Event) -> dict[str, Any]:
    """The original ``message`` event body for a received message."""
    payload = event.payload
    return {
        "id": payload["id"],
        "session": event.session,
        "from": payload["from"],
        "to": payload["to"],
        "text": payload["text"],
        "body": payload["text"],
        "type": payload["type"],
        "timestamp": payload["timestamp"],
    }


async def send(
    sio: socketio.AsyncServer,
    event: Event,
    to: str | list[str],
    skip: list[str] | None = None,
) -> None:
    """Emit ``event`` to a socket or rooms, leaving out the sockets in ``skip``."""
    await sio.emit("event", event.envelope(), to=to, skip_sid=skip)
    if event.type == EventType.MESSAGE_RECEIVED:
        await sio.emit("message", legacy_message(event), to=to, skip_sid=skip)
