"""The bot connector's sender: what arrives in a session's chats, asked of a bot over HTTP.

Each ``message.received`` event that the integration's filter takes (chats, a prefix, keywords;
nothing given: every message) and whose chat no human took over is POSTed to the bot's URL,
signed like a webhook (Standard Webhooks, the integration's secret), within its timeout. The
bot answers nothing (any 2xx without a body) or ``{"reply": {...}}`` (a message in zapgate's
send shape, or a list of up to ``REPLIES_MAX``; ``to`` is the chat the message came from), and
may add ``"handoff": true`` to leave the chat to a human (as ``.../pause`` does).

Replies are queued in the session's outbox under a key per event and reply, so a delivery
tried again (a timeout after the bot answered) never sends a reply twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.errors import AppError
from zapgate.events.model import EventType
from zapgate.integrations import repository
from zapgate.phone import address_of
from zapgate.validation import scrub_text
from zapgate.webhooks import http11, signing, ssrf
from zapgate.webhooks.client import public_reason
from zapgate.webhooks.model import AttemptOutcome, Delivery, Webhook
from zapgate.webhooks.sender import REQUEST_ID_HEADER, USER_AGENT, HttpPool

ANSWER_MAX = 64 * 1024
REPLIES_MAX = 5


class BadReply(Exception):
    """The bot's answer is not what zapgate can send; the message says why."""


Reply = Callable[[str, str, str, dict[str, Any], str], Awaitable[None]]
"""``reply(tenant, session, to, message, key)``: queue ``message`` (the send shape) once per
``key``; raises BadReply when it is not a message the session can send."""


class BotSender(HttpPool):
    """The sender of ``bot`` subscriptions (``Dispatcher(senders=...)``)."""

    def __init__(
        self, database: AsyncEngine, committer: Committer, allowlist: ssrf.Allowlist
    ) -> None:
        super().__init__(allowlist)
        self._database = database
        self._committer = committer
        self.reply: Reply | None = None
        """Set once the services exist (it sends through them)."""

    async def send(self, subscription: Webhook, delivery: Delivery, body: bytes) -> AttemptOutcome:
        """Ask the bot about one message and queue what it answers."""
        started = time.monotonic()
        envelope = orjson.loads(body)
        payload = envelope.get("payload") or {}
        session = str(envelope.get("session") or "")
        chat = str(payload.get("chat_id") or "")
        skipped = await self._skipped(subscription, envelope, payload, session, chat)
        if skipped is not None:
            return AttemptOutcome.timed(started, None, None, f"skipped: {skipped}")
        timeout = float(subscription.config.get("timeout_seconds") or 10)
        try:
            async with asyncio.timeout(timeout):
                answer = await self._post(subscription, delivery, body)
        except Exception as error:
            return AttemptOutcome.timed(started, None, public_reason(error, timeout))
        if not 200 <= answer.status < 300:  # what it said is kept, as a webhook's answer is
            said = scrub_text(answer.excerpt[: http11.EXCERPT_BYTES].decode(errors="replace"))
            return AttemptOutcome.timed(started, answer.status, f"HTTP {answer.status}", said)
        try:
            note = await self._answered(subscription, delivery, session, chat, answer)
        except AppError as error:  # the outbox is full for now, say: asked again later
            return AttemptOutcome.timed(started, answer.status, f"the reply waits: {error}")
        except BadReply as error:
            return AttemptOutcome.timed(
                started, answer.status, f"the bot's reply: {error}", final=True
            )
        return AttemptOutcome.timed(started, answer.status, None, note)

    async def _skipped(
        self,
        bot: Webhook,
        envelope: dict[str, Any],
        payload: dict[str, Any],
        session: str,
        chat: str,
    ) -> str | None:
        if envelope.get("type") != EventType.MESSAGE_RECEIVED or payload.get("direction") != "in":
            return "not an incoming message"
        if not matches(bot.config.get("filter") or {}, chat, payload.get("text")):
            return "the filter does not take it"
        if await repository.paused(self._database, bot.tenant, session, chat):
            return "a human took the chat over"
        return None

    async def _post(self, bot: Webhook, delivery: Delivery, body: bytes) -> http11.Answer:
        now = now_ms()
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": USER_AGENT,
            **signing.headers(bot.signing_secrets(now), delivery.event_id, now // 1000, body),
        }
        if delivery.request_id is not None:
            headers[REQUEST_ID_HEADER] = delivery.request_id
        return await self.http.post(bot.url, body, headers, keep=ANSWER_MAX)

    async def _answered(
        self, bot: Webhook, delivery: Delivery, session: str, chat: str, answer: http11.Answer
    ) -> str:
        if not answer.excerpt.strip():
            return "no reply"
        if not answer.whole:
            raise BadReply(f"the answer is larger than {ANSWER_MAX} bytes")
        document = http11.json_or_none(answer.excerpt)
        if not isinstance(document, dict):
            raise BadReply("the answer is not a JSON object")
        replies = document.get("reply")
        if replies is None:
            replies = []
        elif isinstance(replies, dict):
            replies = [replies]
        if not isinstance(replies, list) or not all(isinstance(r, dict) for r in replies):
            raise BadReply("reply is a message object or a list of them")
        if len(replies) > REPLIES_MAX:
            raise BadReply(f"at most {REPLIES_MAX} replies per message")
        assert self.reply is not None, "the services set the reply function"
        for index, message in enumerate(replies):
            key = f"zapgate-bot:{delivery.event_id}:{index}"
            await self.reply(bot.tenant, session, address_of(chat), message, key)
        handoff = document.get("handoff") is True
        if handoff:
            await self._pause(bot.tenant, session, chat)
        sent = f"{len(replies)} repl{'y' if len(replies) == 1 else 'ies'} queued"
        return sent + (", chat handed to a human" if handoff else "")

    async def _pause(self, tenant: str, session: str, chat: str) -> None:
        async def job(unit: UnitOfWork) -> None:
            await repository.pause(unit, tenant, session, chat)

        await self._committer.run(job, background=tenant)


def matches(rule: dict[str, Any], chat: str, text: Any) -> bool:
    """Whether a message passes a bot's filter: every part given must take it (``chats``: its
    chat is listed; ``prefix``: its text starts with it; ``keywords``: its text has one, as a
    whole word, ignoring case)."""
    chats = rule.get("chats") or []
    if chats and chat not in chats and address_of(chat) not in chats:
        return False
    words = str(text or "").casefold()
    prefix = rule.get("prefix")
    if prefix and not words.startswith(str(prefix).casefold()):
        return False
    keywords = [str(word).casefold() for word in rule.get("keywords") or []]
    if keywords:
        found = set("".join(c if c.isalnum() else " " for c in words).split())
        if not any(word in found or (" " in word and word in words) for word in keywords):
            return False
    return True
