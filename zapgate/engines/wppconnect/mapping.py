"""WPPConnect's words to zapgate's: statuses, socket states, acks, messages."""

from __future__ import annotations

from typing import Any

from zapgate.engines.base import AckStatus, InboundMessage, SessionStatus
from zapgate.phone import number_of

STATUS_FIND: dict[str, tuple[SessionStatus, str | None]] = {
    "notLogged": (SessionStatus.SCAN_QR_CODE, None),
    "qrReadSuccess": (SessionStatus.STARTING, None),
    "isLogged": (SessionStatus.STARTING, None),
    "inChat": (SessionStatus.WORKING, None),
    "qrReadFail": (SessionStatus.FAILED, "the QR code was not scanned in time"),
    "qrReadError": (SessionStatus.FAILED, "the QR code could not be read"),
    "autocloseCalled": (SessionStatus.FAILED, "the QR code was not scanned in time"),
    "browserClose": (SessionStatus.FAILED, "the browser was closed"),
    "serverClose": (SessionStatus.FAILED, "the WhatsApp Web server closed the connection"),
    "disconnectedMobile": (SessionStatus.DISCONNECTED, "the phone is disconnected"),
    "desconnectedMobile": (SessionStatus.DISCONNECTED, "the phone is disconnected"),
    "phoneNotConnected": (SessionStatus.DISCONNECTED, "the phone is not connected"),
}

SOCKET_STATE: dict[str, tuple[SessionStatus, str | None]] = {
    "CONNECTED": (SessionStatus.WORKING, None),
    "UNPAIRED": (SessionStatus.SCAN_QR_CODE, "this device was unlinked; scan the new QR code"),
    "UNPAIRED_IDLE": (SessionStatus.SCAN_QR_CODE, "this device was unlinked; scan the new QR code"),
}

ACKS = {2: AckStatus.DELIVERED, 3: AckStatus.READ, 4: AckStatus.PLAYED, 1: AckStatus.SENT}

KINDS = {"chat": "text", "image": "image", "document": "file", "ptt": "voice", "audio": "audio"}


def status_of_state(state: str) -> tuple[SessionStatus, str | None]:
    """The session status for a socket state (anything unknown means reconnecting)."""
    return SOCKET_STATE.get(state, (SessionStatus.DISCONNECTED, f"WhatsApp Web is {state}"))


def inbound(data: dict[str, Any]) -> InboundMessage:
    """An inbound message from a bridge ``message`` event."""
    timestamp = data.get("timestamp") or 0
    return InboundMessage(
        engine_message_id=str(data["id"]),
        sender=number_of(str(data.get("from", ""))),
        recipient=number_of(str(data.get("to", ""))),
        kind=KINDS.get(str(data.get("type", "chat")), str(data.get("type", "chat"))),
        text=data.get("body") if isinstance(data.get("body"), str) else None,
        timestamp_ms=int(float(timestamp) * 1000),
    )
