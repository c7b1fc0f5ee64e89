"""Telegram's webhook calls for a Telegram session: the secret token first, then the update.

The ``X-Telegram-Bot-Api-Secret-Token`` header is the credential: it is compared (in constant
time) with the session's secret before the body is read, and nothing is stored when it does not
match. An unknown session, a session of another engine or in polling mode, and a wrong secret
all get the same 401 (no telling which sessions exist), and each counts against the address's
auth-failure budget for that session. The update goes to the session through
``SessionManager.callback_sink``: recorded on any node, whichever node runs the session.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from pydantic import ValidationError

from zapgate.engines.telegram import updates
from zapgate.engines.telegram.bot import BotClient
from zapgate.engines.telegram.config import TelegramConfig, parse
from zapgate.errors import AppError, InvalidInput, Unauthorized
from zapgate.limits.service import LimitService
from zapgate.sessions import calls
from zapgate.sessions.model import Session
from zapgate.sessions.service import SessionManager
from zapgate.webhooks import ssrf
from zapgate.webhooks.http11 import Http11Client

log = logging.getLogger(__name__)
ENGINE = "telegram"
CREDENTIAL_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramCallbacks:
    """Checks and records Telegram's webhook calls on any node."""

    def __init__(
        self,
        sessions: SessionManager,
        limits: LimitService,
        allowlist: ssrf.Allowlist,
        max_media_bytes: int,
    ) -> None:
        self._sessions = sessions
        self._limits = limits
        self._http = Http11Client(allowlist)
        self._max_bytes = max_media_bytes

    async def close(self) -> None:
        await self._http.close()

    async def receive(
        self, tenant: str, name: str, body: bytes, secret: str | None, address: str | None
    ) -> updates.Handled:
        """Check the secret token, then record the update."""
        key = None if address is None else f"telegram:{tenant}/{name}:{address}"
        blocked = self._limits.address_blocked(key)
        if blocked is not None:
            raise blocked
        config = await self._config(tenant, name)
        expected = config.webhook_secret(tenant, name).encode() if config else b""
        given = (secret or "").encode("utf-8", "replace")
        if config is None or not hmac.compare_digest(given, expected):
            self._limits.record_failure(key)
            raise Unauthorized(f"{CREDENTIAL_HEADER} is missing or wrong")
        update = _update(body)
        bot = BotClient(config, self._http, self._max_bytes)
        handled = updates.Handled()
        sink = self._sessions.callback_sink(tenant, name)
        await updates.report(update, config.bot_id, sink, bot.download, handled)
        return handled

    async def _config(self, tenant: str, name: str) -> TelegramConfig | None:
        """The session's config; None unless it is a Telegram session in webhook mode."""
        try:  # from the database: a secret rotated through another node counts at once
            session = await self._sessions.get(tenant, name)
        except AppError:
            return None
        return _config_of(session)


def _config_of(session: Session) -> TelegramConfig | None:
    if session.engine != ENGINE:
        return None
    try:
        config = parse(calls.engine_options(session.config))
    except ValidationError:
        return None
    return config if config.mode == "webhook" else None


def _update(body: bytes) -> dict[str, Any]:
    """The update in the body (InvalidInput when it is not one)."""
    try:
        update = json.loads(body)
    except ValueError:
        raise InvalidInput("the body is not JSON") from None
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        raise InvalidInput("the body is not a Telegram update (no update_id)")
    return update
