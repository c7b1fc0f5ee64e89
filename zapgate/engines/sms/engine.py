"""The SMS engine: a session is one sender (a number, or a messaging service) of an account on a
Twilio-compatible Messages REST API.

There is nothing to pair: the session is WORKING once a GET of the account succeeds (its
credentials are right), and that GET is repeated every ``health_seconds``. Only texts are sent;
each asks for status callbacks at the session's callback URL. The provider's errors are sorted
by code (``errors.py``): transient ones are retried by the sender, bad credentials fail the
session (its messages wait in the outbox), the rest fail the message with the provider's reason.
Received SMS and statuses arrive as callbacks (``callbacks.py``) on the route that checks their
signature.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from zapgate.channels import SMS_SUFFIX
from zapgate.engines.account import AccountSession
from zapgate.engines.base import (
    Capability,
    EngineError,
    EngineNotReady,
    EngineSink,
    OutboundMessage,
    PermanentEngineError,
    SendReceipt,
    SessionConfig,
    SessionStatus,
    TransientEngineError,
    UnsupportedByEngine,
    UnsupportedMessageType,
)
from zapgate.engines.sms import callbacks
from zapgate.engines.sms.client import MessagesClient
from zapgate.engines.sms.config import SmsConfig, parse
from zapgate.engines.sms.errors import ProviderError
from zapgate.webhooks import ssrf
from zapgate.webhooks.http11 import Http11Client

BODY_MAX = 1600
"""Characters of one message at most (the provider's limit; longer texts are refused)."""
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class SmsEngine(AccountSession):
    """One sender on a Twilio-compatible Messages API."""

    name = "sms"
    capabilities = frozenset({Capability.TEXT})

    def __init__(self, allowlist: ssrf.Allowlist) -> None:
        super().__init__()
        self._allowlist = allowlist
        self._config: SmsConfig | None = None
        self._session: SessionConfig | None = None
        self._client: MessagesClient | None = None

    # lifecycle -------------------------------------------------------------------------------

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        config = parse(session.options)
        self._config, self._session, self._sink = config, session, sink
        self._http = Http11Client(self._allowlist)
        self._client = MessagesClient(config, self._http)
        await sink.status(SessionStatus.STARTING)
        self._task = asyncio.create_task(self._watch(), name=f"sms:{session.name}")

    async def request_pairing_code(self, phone: str) -> str:
        raise UnsupportedByEngine("the sms engine has nothing to pair")

    async def _watch(self) -> None:
        """WORKING while the account answers (``AccountSession``); the credentials refused:
        FAILED."""
        client, config = self._client, self._config
        assert client is not None
        assert config is not None

        async def me() -> dict[str, Any]:
            return _account(await client.account(), config)

        await self._watch_account(me, ProviderError, config.health_seconds)

    # sending ---------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendReceipt:
        client, config, session = self._client, self._config, self._session
        if not self._ready or client is None or config is None or session is None:
            raise EngineNotReady("the session is not WORKING")
        if message.kind not in self.capabilities:
            raise UnsupportedMessageType(f"the sms engine cannot send {message.kind!r} messages")
        try:
            answer = await client.send(_params(message, config, session))
        except ProviderError as error:
            raise self._engine_error(error) from None
        return SendReceipt(str(answer["sid"]))

    def _engine_error(self, error: ProviderError) -> EngineError:
        """The provider's error as the sender should take it (and what the engine learns)."""
        if error.auth:  # the session cannot send at all: it fails, its messages wait
            self._fail_soon(str(error))
            return EngineNotReady(str(error))
        if error.transient:
            if error.code < 0 and error.http_status == 0:  # no answer: look at the account now
                self._look.set()
            return TransientEngineError(str(error))
        return PermanentEngineError(str(error))

    # callbacks (on the route, in tests) -------------------------------------------------------

    async def handle_callback(self, body: bytes, signature: str | None) -> callbacks.Handled:
        """A callback for this session, checked and reported to the engine's sink."""
        config, session, sink = self._config, self._session, self._sink
        if config is None or session is None or sink is None:
            raise EngineNotReady("the session is not running")
        url = config.callback_url(session.tenant, session.name)
        params = callbacks.checked(body, url, signature, config.auth_token)
        handled = callbacks.Handled()
        await callbacks.report(params, sink, handled)
        return handled


def _params(message: OutboundMessage, config: SmsConfig, session: SessionConfig) -> dict[str, str]:
    """The form of a send: ``To``, the sender, ``Body`` and (with a public URL) where the
    statuses go. PermanentEngineError for what the provider would refuse anyway."""
    to = message.to.removesuffix(SMS_SUFFIX)
    to = to if to.startswith("+") else f"+{to}"
    if not E164.fullmatch(to):
        raise PermanentEngineError(f"{message.to!r} is not an E.164 number")
    text = message.text or ""
    if not text:
        raise PermanentEngineError("an SMS needs a text")
    if len(text) > BODY_MAX:
        raise PermanentEngineError(f"an SMS holds {BODY_MAX} characters at most")
    params = {"To": to, "Body": text}
    params["MessagingServiceSid" if config.service else "From"] = config.sender
    callback = config.callback_url(session.tenant, session.name)
    if callback is not None:
        params["StatusCallback"] = callback
    return params


def _account(account: dict[str, Any], config: SmsConfig) -> dict[str, Any]:
    """The session's ``me``: the sender, and the account's name and status."""
    return {
        "id": config.sender,
        "name": account.get("friendly_name"),
        "account_sid": config.account_sid,
        "account_status": account.get("status"),
    }
