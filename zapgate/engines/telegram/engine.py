"""The Telegram engine: a session is one bot of the Telegram Bot API.

There is nothing to pair: the session is WORKING once ``getMe`` answers (``me`` from it) and
updates are set up, by ``setWebhook`` (webhook mode: Telegram POSTs each update to the session's
callback URL, on any node) or ``deleteWebhook`` (polling mode: this engine long-polls
``getUpdates``). A refused token fails the session; an unreachable server is DISCONNECTED, tried
again with a growing pause, until it answers. Polling confirms an update only once it is
recorded (the next ``getUpdates`` carries its id + 1 as ``offset``), so a restart resumes where
Telegram's confirmed offset is, and what is delivered again is stored once (``once``).

Telegram has no delivery or read receipts: a sent message stays ``sent``. Its flood control (a
429 with ``retry_after``) reaches the sender as a TransientEngineError that says how long to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from zapgate.clock import Clock
from zapgate.engines.account import AccountSession
from zapgate.engines.base import (
    MESSAGE_TYPES,
    Capability,
    EngineError,
    EngineNotReady,
    EngineSink,
    OutboundMessage,
    PermanentEngineError,
    Presence,
    SendReceipt,
    SessionConfig,
    SessionStatus,
    TransientEngineError,
    UnsupportedByEngine,
    UnsupportedMessageType,
)
from zapgate.engines.telegram import updates
from zapgate.engines.telegram.bot import BotClient
from zapgate.engines.telegram.config import TelegramConfig, parse
from zapgate.engines.telegram.errors import NO_ANSWER, BotApiError
from zapgate.engines.telegram.payloads import call_for, chat_of, engine_id, message_ref
from zapgate.webhooks import ssrf
from zapgate.webhooks.http11 import Http11Client

log = logging.getLogger(__name__)
LOGOUT_SECONDS = 5.0
"""How long a logout waits for ``deleteWebhook``."""
CHAT_ACTIONS = {Presence.TYPING: "typing", Presence.RECORDING: "record_voice"}


class TelegramEngine(AccountSession):
    """One bot on the Telegram Bot API."""

    name = "telegram"
    capabilities = frozenset(
        {
            *(Capability(kind) for kind in MESSAGE_TYPES),
            Capability.EDIT,
            Capability.REVOKE,
            Capability.PRESENCE,
        }
    )

    def __init__(
        self,
        allowlist: ssrf.Allowlist,
        clock: Clock,
        max_media_bytes: int,
        server_url: str | None = None,
    ) -> None:
        super().__init__()
        self._allowlist = allowlist
        self._clock = clock
        self._max_bytes = max_media_bytes
        self._server_url = server_url
        """``ZAPGATE_PUBLIC_URL``: the webhook's base when the config names none."""
        self._session: SessionConfig | None = None
        self._config: TelegramConfig | None = None
        self._bot: BotClient | None = None
        self._offset: int | None = None
        """The next ``getUpdates`` offset (this process's: a new one starts at Telegram's)."""

    # lifecycle -------------------------------------------------------------------------------

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        config = parse(session.options)
        self._session, self._config, self._sink = session, config, sink
        self._http = Http11Client(self._allowlist)
        self._bot = BotClient(config, self._http, self._max_bytes)
        await sink.status(SessionStatus.STARTING)
        self._task = asyncio.create_task(self._run(), name=f"telegram:{session.name}")

    async def logout(self) -> None:
        """Stop; a webhook is deleted first (Telegram stops calling a session that is gone).
        The token stays valid: nothing else to unlink."""
        bot, config = self._bot, self._config
        await self.stop()
        if bot is not None and config is not None and config.mode == "webhook":
            with contextlib.suppress(BotApiError, TimeoutError):
                async with asyncio.timeout(LOGOUT_SECONDS):
                    await bot.call("deleteWebhook", {"drop_pending_updates": False})
            if self._http is not None:
                await self._http.close()

    async def request_pairing_code(self, phone: str) -> str:
        raise UnsupportedByEngine("the telegram engine has nothing to pair")

    async def _run(self) -> None:
        """Connect, then poll (or look at the bot every ``health_seconds``): WORKING while
        Telegram answers, DISCONNECTED (trying again) while it cannot be reached, FAILED when
        the token or the webhook is refused."""
        assert self._config is not None
        failures = 0
        while self._sink is not None:
            try:
                if not self._ready:
                    await self._connect()
                if self._config.mode == "polling":
                    await self._poll()
                else:
                    await self._pause(self._config.health_seconds)
                    await self._look_at_bot()
                failures = 0
            except BotApiError as error:
                if error.auth or not (error.transient or error.code == 409):
                    await self._report_failed(str(error))
                    return
                failures += 1
                if self._ready or failures == 1:
                    self._ready = False
                    await self._report(SessionStatus.DISCONNECTED, str(error))
                backoff = min(self._config.health_seconds, 2.0 ** (failures - 1))
                await self._pause(max(backoff, error.retry_after or 0.0))
            except Exception:  # recording an update failed: it stays unconfirmed, comes again
                log.exception("telegram session %s: updates could not be recorded", self._name)
                failures += 1
                await self._pause(min(self._config.health_seconds, 2.0 ** (failures - 1)))

    async def _connect(self) -> None:
        """``getMe``, then the way updates come; ``me`` and WORKING."""
        bot, config, session = self._bot, self._config, self._session
        assert bot is not None
        assert config is not None
        assert session is not None
        me = await bot.call("getMe")
        if config.mode == "webhook":
            await bot.call(
                "setWebhook",
                {
                    "url": config.webhook_url(session.tenant, session.name, self._server_url),
                    "secret_token": config.webhook_secret(session.tenant, session.name),
                    "allowed_updates": updates.ALLOWED_UPDATES,
                },
            )
        else:
            await bot.call("deleteWebhook", {"drop_pending_updates": False})
        sink = self._sink
        if sink is None:
            return
        await sink.me(_account(me))
        self._ready = True
        await sink.status(SessionStatus.WORKING)

    async def _look_at_bot(self) -> None:
        """``getMe`` again: a sign of life, and a revoked token shows."""
        assert self._bot is not None
        await self._bot.call("getMe")
        if self._sink is not None:
            await self._sink.heartbeat()

    async def _poll(self) -> None:
        """One long poll: each update reported, then confirmed by the next poll's offset."""
        bot, config, sink = self._bot, self._config, self._sink
        assert bot is not None
        assert config is not None
        if sink is None:
            return
        found = await bot.updates(
            self._offset, config.poll_timeout_seconds, updates.ALLOWED_UPDATES
        )
        handled = updates.Handled()
        for update in sorted(_updates(found), key=lambda u: u["update_id"]):
            if self._sink is None:
                return
            await updates.report(update, config.bot_id, sink, bot.download, handled)
            self._offset = update["update_id"] + 1
        if not handled.updates:
            await sink.heartbeat()

    @property
    def _name(self) -> str:
        return self._session.name if self._session else "?"

    # sending ---------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendReceipt:
        bot = self._bot
        if not self._ready or bot is None:
            raise EngineNotReady("the session is not WORKING")
        if message.kind not in self.capabilities:
            raise UnsupportedMessageType(
                f"the telegram engine cannot send {message.kind!r} messages"
            )
        call = call_for(message)
        try:
            if call.file_field is not None and message.media is not None:
                result = await bot.upload(call.method, call.params, call.file_field, message.media)
            else:
                result = await bot.call(call.method, call.params)
        except BotApiError as error:
            raise self._engine_error(error) from None
        if call.method == "setMessageReaction":
            assert message.target is not None  # a reaction has no message of its own: an id
            chat, target = message_ref(message.target)  # for this one, unique
            return SendReceipt(f"{engine_id(chat, target)}:reaction:{secrets.token_hex(6)}")
        return SendReceipt(_sent_id(result))

    def _engine_error(self, error: BotApiError) -> EngineError:
        """Telegram's error as the sender should take it."""
        if error.auth:  # the session cannot send at all: it fails, its messages wait
            self._fail_soon(str(error))
            return EngineNotReady(str(error))
        if error.transient:
            if error.code == NO_ANSWER:  # no answer from Telegram: look at the connection now
                self._look.set()
            return TransientEngineError(str(error), retry_after_seconds=error.retry_after)
        return PermanentEngineError(str(error))

    # actions ---------------------------------------------------------------------------------

    async def edit(self, chat: str, engine_message_id: str, text: str) -> None:
        """A sent text's new text (``editMessageText``)."""
        chat_id, message_id = message_ref(engine_message_id)
        await self._act(
            "editMessageText", {"chat_id": chat_id, "message_id": message_id, "text": text}
        )

    async def revoke(self, chat: str, engine_message_id: str) -> None:
        """Delete a message for everyone (``deleteMessage``; Telegram allows it for 48 hours)."""
        chat_id, message_id = message_ref(engine_message_id)
        await self._act("deleteMessage", {"chat_id": chat_id, "message_id": message_id})

    async def presence(self, chat: str, state: Presence) -> None:
        """Typing or recording in ``chat`` (Telegram shows it 5 seconds; paused: nothing)."""
        action = CHAT_ACTIONS.get(state)
        if action is not None:
            await self._act("sendChatAction", {"chat_id": chat_of(chat), "action": action})

    async def reject_call(self, call_id: str) -> None:
        raise UnsupportedByEngine("the telegram engine has no calls")

    async def _act(self, method: str, params: dict[str, Any]) -> None:
        bot = self._bot
        if not self._ready or bot is None:
            raise EngineNotReady("the session is not WORKING")
        try:
            await bot.call(method, params)
        except BotApiError as error:
            raise self._engine_error(error) from None

    # webhook (on the route, in tests) --------------------------------------------------------

    async def handle_update(self, update: dict[str, Any]) -> updates.Handled:
        """An update for this session (already checked), reported to the engine's sink."""
        config, bot, sink = self._config, self._bot, self._sink
        if config is None or bot is None or sink is None:
            raise EngineNotReady("the session is not running")
        handled = updates.Handled()
        await updates.report(update, config.bot_id, sink, bot.download, handled)
        return handled


def _account(me: Any) -> dict[str, Any]:
    """The session's ``me``: the bot's id, username and name."""
    me = me if isinstance(me, dict) else {}
    return {
        "id": str(me.get("id", "")),
        "username": me.get("username"),
        "name": me.get("first_name"),
    }


def _sent_id(result: Any) -> str:
    """The engine id of the message a send made."""
    if isinstance(result, dict) and isinstance(result.get("message_id"), int):
        chat = result.get("chat")
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return engine_id(chat["id"], result["message_id"])
    raise PermanentEngineError("the Bot API took the message without saying its id")


def _updates(found: list[Any]) -> list[dict[str, Any]]:
    return [u for u in found if isinstance(u, dict) and isinstance(u.get("update_id"), int)]
