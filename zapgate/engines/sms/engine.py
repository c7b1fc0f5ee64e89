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
import contextlib
import logging
import re
from typing import Any

from zapgate.channels import SMS_SUFFIX
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
from zapgate.tasks import cancel_and_wait
from zapgate.webhooks import ssrf
from zapgate.webhooks.http11 import Http11Client

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30.0
"""A sign of life this often, whatever ``health_seconds`` (a silent session is restarted)."""
BODY_MAX = 1600
"""Characters of one message at most (the provider's limit; longer texts are refused)."""
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class SmsEngine:
    """One sender on a Twilio-compatible Messages API."""

    name = "sms"
    capabilities = frozenset({Capability.TEXT})

    def __init__(self, allowlist: ssrf.Allowlist) -> None:
        self._allowlist = allowlist
        self._sink: EngineSink | None = None
        self._config: SmsConfig | None = None
        self._session: SessionConfig | None = None
        self._http: Http11Client | None = None
        self._client: MessagesClient | None = None
        self._ready = False
        self._look = asyncio.Event()
        """Set to look at the account now (a send could not reach the provider)."""
        self._task: asyncio.Task[None] | None = None

    # lifecycle -------------------------------------------------------------------------------

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        config = parse(session.options)
        self._config, self._session, self._sink = config, session, sink
        self._http = Http11Client(self._allowlist)
        self._client = MessagesClient(config, self._http)
        await sink.status(SessionStatus.STARTING)
        self._task = asyncio.create_task(self._watch(), name=f"sms:{session.name}")

    async def stop(self) -> None:
        self._ready = False
        self._sink = None
        await cancel_and_wait(self._task)
        self._task = None
        if self._http is not None:
            await self._http.close()

    async def logout(self) -> None:
        """Nothing to unlink (the credentials stay valid at the provider): the same as stopping."""
        await self.stop()

    async def request_pairing_code(self, phone: str) -> str:
        raise UnsupportedByEngine("the sms engine has nothing to pair")

    async def _watch(self) -> None:
        """Look at the account now and every ``health_seconds``: WORKING while it answers,
        DISCONNECTED (trying again sooner) while the provider cannot be reached, FAILED when
        the credentials are refused."""
        assert self._client is not None
        assert self._config is not None
        failures = 0
        while self._sink is not None:
            try:
                account = await self._client.account()
            except ProviderError as error:
                if error.auth or not error.transient:
                    await self._report_failed(str(error))
                    return
                failures += 1
                if self._ready or failures == 1:
                    self._ready = False
                    await self._report(SessionStatus.DISCONNECTED, str(error))
                await self._pause(min(self._config.health_seconds, 2.0 ** (failures - 1)))
                continue
            failures = 0
            sink = self._sink
            if sink is None:
                return
            if not self._ready:
                await sink.me(_account(account, self._config))
                self._ready = True
                await sink.status(SessionStatus.WORKING)
            else:
                await sink.heartbeat()
            await self._pause(self._config.health_seconds)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` (or until asked to look now), a sign of life every
        ``HEARTBEAT_SECONDS`` meanwhile, so a long ``health_seconds`` never looks stale."""
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, HEARTBEAT_SECONDS)):
                    await self._look.wait()
            if self._look.is_set():
                break
            if self._sink is not None and self._ready:
                await self._sink.heartbeat()
        self._look.clear()

    async def _report(self, status: SessionStatus, reason: str | None = None) -> None:
        if self._sink is not None:
            await self._sink.status(status, reason)

    async def _report_failed(self, reason: str) -> None:
        self._ready = False
        await self._report(SessionStatus.FAILED, reason)

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
            if self._ready:
                self._ready = False
                task = asyncio.create_task(self._report_failed(str(error)))
                task.add_done_callback(_log_failure)
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


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not report a failed session", exc_info=task.exception())
