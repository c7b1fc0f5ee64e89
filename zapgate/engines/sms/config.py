"""An SMS session's config, checked by the session API (bad input: 422).

``auth_token`` is write-only: the API never shows it again (see ``SECRET_KEYS``). ``api_base``
is the tenant's to choose (any Twilio-compatible provider), so it passes the webhooks' SSRF
guard; changing it means giving the token again (the registry's ``secrets_go_to``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zapgate.webhooks import ssrf

TWILIO_URL = "https://api.twilio.com"
API_VERSION = "2010-04-01"
SECRET_KEYS = frozenset({"auth_token"})
"""Config keys never returned by the API (a config update that leaves one out keeps it)."""
SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
"""A messaging service: it picks the sender from its pool (sent as ``MessagingServiceSid``)."""
SENDER = (
    r"^(\+[1-9][0-9]{6,14}"  # a number, E.164
    r"|[0-9]{3,8}"  # a short code
    r"|MG[0-9a-fA-F]{32}"  # a messaging service
    r"|[A-Za-z0-9 ]*[A-Za-z][A-Za-z0-9 ]*)$"  # an alphanumeric sender id (11 at most)
)
ALPHANUMERIC_MAX = 11
CALLBACK_PATH = "/api/v1/sms/{tenant}/{session}/webhook"
"""Where the provider calls (below ``public_url``): inbound SMS and status callbacks."""


class SmsConfig(BaseModel):
    """What an ``sms`` session needs from the provider's console."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    account_sid: str = Field(pattern=r"^[A-Za-z0-9-]{1,64}$", description="AC… at Twilio")
    auth_token: str = Field(min_length=1, max_length=256, pattern=r"^[!-~]+$", repr=False)
    """The account's auth token: the API's password and the callbacks' key (write-only)."""
    sender: str = Field(
        alias="from",
        pattern=SENDER,
        description="the sending number (E.164), a short code, an alphanumeric sender id, or a "
        "messaging service (MG…)",
    )
    api_base: str = Field(default=TWILIO_URL, max_length=2048, pattern=r"^https?://[^?#\s]+$")
    """The provider's API root, before ``/2010-04-01/`` (a path is kept: some providers
    serve the Twilio-compatible API below one)."""
    public_url: str | None = Field(
        default=None, max_length=2048, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$"
    )
    """The base URL the provider reaches zapgate at: status callbacks are asked for at
    ``{public_url}/api/v1/sms/{tenant}/{session}/webhook``, and callbacks are checked against
    that URL. Without it, messages are sent without status callbacks and no callback is taken."""
    timeout_seconds: float = Field(default=20.0, ge=1, le=120)
    """How long one API call may take."""
    health_seconds: float = Field(default=300.0, ge=1, le=3600)
    """How often the account is looked at (a sign of life; a revoked token shows)."""

    @field_validator("sender")
    @classmethod
    def _short_sender_id(cls, sender: str) -> str:
        numbered = sender.startswith("+") or SERVICE_SID.fullmatch(sender) is not None
        if not numbered and len(sender) > ALPHANUMERIC_MAX:
            raise ValueError(f"a sender id has {ALPHANUMERIC_MAX} characters at most")
        return sender

    @property
    def root(self) -> str:
        """The account's API root, e.g. ``https://api.twilio.com/2010-04-01/Accounts/AC…``."""
        return f"{self.api_base.rstrip('/')}/{API_VERSION}/Accounts/{self.account_sid}"

    @property
    def service(self) -> bool:
        """Whether ``from`` is a messaging service, not a sender."""
        return SERVICE_SID.fullmatch(self.sender) is not None

    def callback_url(self, tenant: str, session: str) -> str | None:
        """The session's callback URL as the provider calls it (None without ``public_url``)."""
        if self.public_url is None:
            return None
        path = CALLBACK_PATH.format(tenant=tenant, session=session)
        return self.public_url.rstrip("/") + path


@lru_cache(maxsize=8)
def checked_model(allowlist: ssrf.Allowlist) -> type[SmsConfig]:
    """``SmsConfig`` that also refuses an ``api_base`` the SSRF guard refuses."""

    class CheckedSmsConfig(SmsConfig):
        @model_validator(mode="after")
        def _safe_api_base(self) -> CheckedSmsConfig:
            try:
                ssrf.check_url(self.api_base, allowlist)
            except ssrf.UnsafeUrl as unsafe:
                raise ValueError(f"api_base: {unsafe}") from None
            return self

    return CheckedSmsConfig


def parse(options: dict[str, Any]) -> SmsConfig:
    """The config of a session (checked when it was stored)."""
    return SmsConfig.model_validate(options)
