"""What goes on the wire for one event: ``event`` (the envelope) and, for inbound messages,
the original ``message``.

Packets are built and encoded once per event and put straight on each recipient's Engine.IO
queue (which writes through to its websocket, see :mod:`zapgate.realtime.direct`): no task per
recipient, and every socket gets an event's packets in the same loop iteration.
"""

from __future__ import annotations

from typing import Any

import orjson
import socketio
from engineio import packet as eio_packet

from zapgate.events.model import Event, EventType
from zapgate.realtime.direct import DirectQueue, packet_frame

NAMESPACE = "/"


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


def send(
    sio: socketio.AsyncServer,
    event: Event,
    to: str | list[str],
    skip: list[str] | None = None,
) -> int:
    """Emit ``event`` to a socket or rooms, leaving out the sockets in ``skip``; returns how
    many sockets it went to."""
    left_out = set(skip or ())
    sockets = sio.eio.sockets
    recipients = [
        socket
        for sid, eio_sid in sio.manager.get_participants(NAMESPACE, to)
        if sid not in left_out
        and (socket := sockets.get(eio_sid)) is not None
        and not socket.closed
    ]
    if not recipients:  # nothing to encode (most events, when nobody listens)
        return 0
    packets = [_packet("event", event.envelope_json())]
    if event.type == EventType.MESSAGE_RECEIVED:
        packets.append(_packet("message", legacy_message(event)))
    frames = b"".join(packet_frame(packet) for packet in packets)
    for socket in recipients:
        queue = socket.queue
        if isinstance(queue, DirectQueue):
            queue.put_frames(packets, frames)
        else:
            for packet in packets:
                queue.put_nowait(packet)
    return len(recipients)


def _packet(name: str, data: Any) -> eio_packet.Packet:
    """One Engine.IO message packet carrying Socket.IO event ``name`` (namespace ``/``, no ack
    id: ``2["name",data]``; ``data`` may be JSON bytes already); ``packet_frame`` frames it once."""
    encoded = data if isinstance(data, bytes) else orjson.dumps(data)
    body = b'["' + name.encode() + b'",' + encoded + b"]"
    return eio_packet.Packet(eio_packet.MESSAGE, "2" + body.decode())
