"""The Messages REST API calls the engine makes: the account (a credentials check) and sends.

Over the webhooks' HTTP/1.1 client, so every call passes the SSRF guard (``api_base`` is the
tenant's) on kept-alive connections; HTTP basic auth with the account SID and auth token, form
bodies, JSON answers. Failures raise :class:`ProviderError`.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import urlencode

from zapgate.engines.sms.config import SmsConfig
from zapgate.engines.sms.errors import ProviderError, from_body
from zapgate.webhooks import http11, ssrf

ANSWER_MAX = 64 * 1024
"""Bytes of a JSON answer read at most."""
SHOWN = "********"
"""The auth token quoted in an error, as it is shown."""
UNSAFE = -2
"""The code of a refusal by the SSRF guard (a config problem: like a bad token)."""
"""What a call that got no answer raises (``_unreachable`` words it)."""


class MessagesClient:
    """One account's Messages API."""

    def __init__(self, config: SmsConfig, http: http11.Http11Client) -> None:
        self._config = config
        self._http = http
        login = base64.b64encode(f"{config.account_sid}:{config.auth_token}".encode()).decode()
        self._headers = {"authorization": f"Basic {login}", "accept": "application/json"}

    async def account(self) -> dict[str, Any]:
        """The account: its name (``friendly_name``) and status; a credentials check."""
        return await self._call(
            self._http.get(f"{self._config.root}.json", self._headers, ANSWER_MAX)
        )

    async def send(self, params: dict[str, str]) -> dict[str, Any]:
        """Create a message (``To``, ``From`` or ``MessagingServiceSid``, ``Body``, ...); the
        provider's Message resource (its ``sid``, ``status``, ``num_segments``, ...)."""
        body = urlencode(params).encode()
        headers = {**self._headers, "content-type": "application/x-www-form-urlencoded"}
        url = f"{self._config.root}/Messages.json"
        answer = await self._call(self._http.post(url, body, headers, keep=ANSWER_MAX))
        sid = answer.get("sid")
        if not isinstance(sid, str) or not sid:
            raise ProviderError(-1, "the SMS provider took the message without giving its sid", 200)
        return answer

    async def _call(self, request: Any) -> dict[str, Any]:
        """The JSON of a 2xx answer; ProviderError for anything else."""
        try:
            async with asyncio.timeout(self._config.timeout_seconds):
                answer: http11.Answer = await request
        except http11.UNREACHABLE as error:
            raise _unreachable(error) from None
        body = http11.json_or_none(answer.excerpt)
        if not 200 <= answer.status < 300:
            raise self._scrubbed(from_body(body, answer.status))
        if not isinstance(body, dict):
            raise ProviderError(-1, f"the SMS provider answered HTTP {answer.status} without JSON")
        return body

    def _scrubbed(self, error: ProviderError) -> ProviderError:
        """``error`` without the auth token (a provider may quote a malformed one back)."""
        error.message = error.message.replace(self._config.auth_token, SHOWN)
        return error


def _unreachable(error: BaseException) -> ProviderError:
    if isinstance(error, ssrf.UnsafeUrl):
        reason = str(error).split(":")[0]
        return ProviderError(UNSAFE, f"the SMS provider's address is refused: {reason}")
    if isinstance(error, TimeoutError):
        return ProviderError(-1, "the SMS provider did not answer in time")
    return ProviderError(-1, f"cannot reach the SMS provider: {type(error).__name__}")
