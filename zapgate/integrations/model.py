"""A session integration is a subscription (``webhooks`` row) of kind ``chatwoot`` or ``bot``,
one of each kind per session, so the dispatcher's cursor, order, retries and replay serve it."""

from __future__ import annotations

import hashlib

from zapgate.events.model import EventType
from zapgate.webhooks.model import Kind

EVENTS = {
    Kind.CHATWOOT: [EventType.MESSAGE_RECEIVED, EventType.MESSAGE_SENT, EventType.MESSAGE_STATUS],
    Kind.BOT: [EventType.MESSAGE_RECEIVED],
}
"""What each kind is sent: Chatwoot mirrors messages both ways and their statuses; a bot is
asked about what arrives."""
MARKER = "zapgate:"
"""The ``source_id`` prefix of the Chatwoot messages zapgate posts (its callback skips them)."""


def integration_id(tenant: str, session: str, kind: str) -> str:
    """The id of a session's integration of ``kind`` (the same on every node, at every PUT)."""
    digest = hashlib.sha256(f"{tenant}\n{session}\n{kind}".encode()).hexdigest()
    return f"int_{digest[:32]}"
