"""A bot's replies and a Chatwoot agent's, sent through the session's outbox like API sends.

Each goes under a key (the idempotency keys' store) so it is queued once, however often the
event or the callback that carries it is tried again.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from zapgate.errors import (
    AppError,
    IdempotencyKeyInProgress,
    IdempotencyKeyMismatch,
    IdempotentReplay,
    QuotaExceeded,
    RateLimited,
)
from zapgate.idempotency.service import fingerprint
from zapgate.integrations.bot import BadReply
from zapgate.messages.api import accepted
from zapgate.messages.commands import send
from zapgate.messages.model import Message
from zapgate.messages.reading import SEND
from zapgate.messages.service import WriteGuard
from zapgate.services import Services

TRANSIENT = (QuotaExceeded, RateLimited, IdempotencyKeyInProgress)
"""Refusals that pass (an outbox full for now): the delivery is tried again."""


async def send_once(
    services: Services,
    tenant: str,
    session: str,
    to: str,
    message: dict[str, Any],
    key: str,
    also: Any = None,
) -> Message | None:
    """Queue ``message`` (the send shape; ``to`` is set here) once for ``key``; None when it
    was queued before. BadReply when it is not a message the session can send."""
    try:
        body = SEND.validate_python({**message, "to": to})
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise BadReply(f"{where}: {problem['msg']}") from None
    print_ = fingerprint("POST", f"/integrations/{session}/{to}", orjson.dumps(message))
    idempotency = services.idempotency
    try:
        claim = await idempotency.begin(tenant, key, print_, accepted)
    except (IdempotentReplay, IdempotencyKeyMismatch):
        return None
    guard: WriteGuard = claim if also is None else also(claim)
    try:
        return await send(services, tenant, session, body, guard)
    except TRANSIENT:
        raise
    except AppError as error:
        raise BadReply(str(error)) from None
    finally:
        idempotency.end(claim)
