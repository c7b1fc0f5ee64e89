"""A Telegram session's config, checked by the session API (bad input: 422).

``bot_token`` and ``secret_token`` are write-only: the API never shows them again (see
``SECRET_KEYS``). ``api_base`` is the tenant's to choose, so it passes the webhooks' SSRF guard.
Webhook mode needs a ``public_url`` (the session's, or the server's ``ZAPGATE_PUBLIC_URL``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zapgate.webhooks import ssrf

API_BASE = "https://api.telegram.org"
SECRET_KEYS = frozenset({"bot_token", "secret_token"})
"""Config keys never returned by the API (a config update that leaves one out keeps it)."""
SECRETS_GO_TO = frozenset({"api_base", "public_url"})
"""Where the secrets travel: the token to ``api_base``, the secret token (from Telegram) to
``public_url``. Changing either needs the secrets given again."""
CALLBACK_PATH = "/api/v1/telegram/{tenant}/{session}/webhook"
"""The session's webhook, below ``public_url``."""
_DERIVED = b"zapgate telegram webhook secret v1"


class TelegramConfig(BaseModel):
    """What a ``telegram`` session needs: a bot's token from @BotFather, and how updates come."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    bot_token: str = Field(
        min_length=3, max_length=256, pattern=r"^[0-9]{1,20}:[A-Za-z0-9_-]{1,200}$", repr=False
    )
    """``<bot id>:<secret>`` as @BotFather gives it (write-only)."""
    api_base: str = Field(default=API_BASE, max_length=2048, pattern=r"^https?://[^/?#\s]+/?$")
    """The Bot API server (Telegram's, or a local ``telegram-bot-api`` server)."""
    mode: Literal["webhook", "polling"] = "polling"
    """How updates arrive: Telegram POSTs them to the webhook, or zapgate long-polls."""
    secret_token: str | None = Field(
        default=None, min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$", repr=False
    )
    """Sent by Telegram in ``X-Telegram-Bot-Api-Secret-Token`` (write-only); derived from the bot
    token when absent (see ``webhook_secret``)."""
    public_url: str | None = Field(
        default=None, max_length=1024, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$"
    )
    """The base URL Telegram reaches this server at (webhook mode)."""
    poll_timeout_seconds: int = Field(default=25, ge=1, le=50)
    """How long one ``getUpdates`` long poll waits for updates (polling mode)."""
    timeout_seconds: float = Field(default=20.0, ge=1, le=120)
    """How long one other Bot API call may take."""
    health_seconds: float = Field(default=60.0, ge=1, le=3600)
    """How often ``getMe`` is asked again (a sign of life; a revoked token shows)."""

    @property
    def bot_id(self) -> str:
        """The bot's user id: the token's first part."""
        return self.bot_token.split(":", 1)[0]

    @property
    def root(self) -> str:
        """The API base without its trailing slash."""
        return self.api_base.rstrip("/")

    def webhook_secret(self, tenant: str, session: str) -> str:
        """The secret Telegram sends with each update: ``secret_token``, or one derived from the
        bot token and the session (the same on every node, and after a restart; it changes with
        the token)."""
        if self.secret_token is not None:
            return self.secret_token
        return derived_secret(self.bot_token, tenant, session)

    def webhook_url(self, tenant: str, session: str, fallback_base: str | None = None) -> str:
        """Where Telegram POSTs this session's updates."""
        base = (self.public_url or fallback_base or "").rstrip("/")
        return base + CALLBACK_PATH.format(tenant=tenant, session=session)


def derived_secret(bot_token: str, tenant: str, session: str) -> str:
    """``base64url(HMAC-SHA256(bot_token, label + tenant/session))`` without padding: 43 of the
    characters Telegram allows in a secret token."""
    message = _DERIVED + b"\n" + f"{tenant}/{session}".encode()
    digest = hmac.new(bot_token.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@lru_cache(maxsize=8)
def checked_model(allowlist: ssrf.Allowlist, server_url: str | None) -> type[TelegramConfig]:
    """``TelegramConfig`` that also refuses an ``api_base`` the SSRF guard refuses, and webhook
    mode without a ``public_url`` (when the server has none of its own)."""

    class CheckedTelegramConfig(TelegramConfig):
        @model_validator(mode="after")
        def _checked(self) -> CheckedTelegramConfig:
            try:
                ssrf.check_url(self.api_base, allowlist)
            except ssrf.UnsafeUrl as unsafe:
                raise ValueError(f"api_base: {unsafe}") from None
            if self.mode == "webhook" and self.public_url is None and server_url is None:
                raise ValueError(
                    "public_url: webhook mode needs the URL Telegram reaches this server at "
                    "(or set ZAPGATE_PUBLIC_URL)"
                )
            return self

    return CheckedTelegramConfig


def parse(options: dict[str, Any]) -> TelegramConfig:
    """The config of a session (checked when it was stored)."""
    return TelegramConfig.model_validate(options)
