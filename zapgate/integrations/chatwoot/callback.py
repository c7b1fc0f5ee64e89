"""Chatwoot's calls to a session's mirror: an agent's reply becomes WhatsApp messages (the text,
or a message per file, the text as the first one's caption).

The URL's ``token`` is the credential (compared in constant time before the body is parsed; an
unknown session, a session without a mirror and a wrong token get the same 401, counted against
the address's auth-failure budget). When the integration has the inbox's ``webhook_secret``
(Chatwoot 4.13+ signs: ``X-Chatwoot-Signature: sha256=HMAC(secret, "{timestamp}.{body}")``), a
call must be signed with it, over a timestamp at most ``SKEW_SECONDS`` away: the token alone
(a URL, which proxies may log) is then not enough.

Only ``message_created`` events of public ``outgoing`` messages not posted by zapgate (its
``source_id`` marker) are sent; everything else is answered 200 ``ignored`` so Chatwoot does
not mark it failed. Each message of a reply is queued under a key made from Chatwoot's message
id and its part (a call tried again sends nothing twice), and written with its Chatwoot twin, so
the mirror does not post it back; the first part's statuses (and any part's failure) are
mirrored to it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.db.committer import Committer, UnitOfWork
from zapgate.errors import InvalidInput, Unauthorized
from zapgate.integrations import repository
from zapgate.integrations.bot import BadReply
from zapgate.integrations.model import MARKER, integration_id
from zapgate.integrations.repository import Conversation
from zapgate.limits.service import LimitService
from zapgate.messages.model import Message
from zapgate.messages.service import WriteGuard
from zapgate.phone import address_of
from zapgate.webhooks import repository as subscriptions
from zapgate.webhooks.model import Kind, Webhook

SKEW_SECONDS = 300
SIGNATURE_HEADER = "x-chatwoot-signature"
TIMESTAMP_HEADER = "x-chatwoot-timestamp"
FILE_TYPES = {"image": "image", "audio": "audio", "video": "video"}
FILES_MAX = 10
"""Files of one agent's message sent (Chatwoot takes more; each is a WhatsApp message)."""

SendOnce = Callable[..., Awaitable[Message | None]]
"""``send_once(tenant, session, to, message, key, also)`` (``zapgate.integrations.replies``)."""


@dataclass(frozen=True, slots=True)
class Handled:
    """What zapgate did with a call."""

    status: str
    """``sent``, or ``ignored``."""
    reason: str | None = None
    message_id: str | None = None


class ChatwootCallbacks:
    """Checks Chatwoot's calls and sends agents' replies."""

    def __init__(self, database: AsyncEngine, committer: Committer, limits: LimitService) -> None:
        self._database = database
        self.committer = committer
        self._limits = limits
        self.send_once: SendOnce | None = None
        """Set once the services exist (it sends through them)."""

    async def receive(
        self,
        tenant: str,
        session: str,
        token: str | None,
        body: bytes,
        headers: dict[str, str],
        address: str | None,
    ) -> Handled:
        """Check the credential (and signature), then act on the event."""
        key = None if address is None else f"chatwoot:{tenant}/{session}:{address}"
        blocked = self._limits.address_blocked(key)
        if blocked is not None:
            raise blocked
        mirror = await subscriptions.get(
            self._database, tenant, integration_id(tenant, session, Kind.CHATWOOT)
        )
        expected = mirror.config.get("token", "") if mirror is not None else ""
        given = (token or "").encode("utf-8", "replace")
        if mirror is None or not expected or not hmac.compare_digest(given, expected.encode()):
            self._limits.record_failure(key)
            raise Unauthorized("the callback's token is missing or wrong")
        if not _signed_right(mirror.config.get("webhook_secret"), body, headers):
            self._limits.record_failure(key)
            raise Unauthorized("X-Chatwoot-Signature does not match the inbox's webhook secret")
        event = _event(body)
        if not mirror.active:
            return Handled("ignored", "the integration is off")
        return await self._act(mirror, session, event)

    async def _act(self, mirror: Webhook, session: str, event: dict[str, Any]) -> Handled:
        if event.get("event") != "message_created":
            return Handled("ignored", f"event {event.get('event')!r} needs nothing")
        if event.get("message_type") != "outgoing":
            return Handled("ignored", "not an agent's message")
        if event.get("private") is True:
            return Handled("ignored", "a private note")
        if str(event.get("source_id") or "").startswith(MARKER):
            return Handled("ignored", "posted by zapgate")
        conversation = event.get("conversation") or {}
        conversation_id = conversation.get("id") if isinstance(conversation, dict) else None
        if not isinstance(conversation_id, int) or not isinstance(event.get("id"), int):
            raise InvalidInput("the event has no message id or conversation id")
        tenant = mirror.tenant
        link = await repository.chat_of(self._database, tenant, session, conversation_id)
        if link is None:  # an agent opened it in Chatwoot: its contact's number says where
            link = _opened_there(conversation, conversation_id)
            if link is None:
                return Handled("ignored", "a conversation with no phone number")
            await self._remember(tenant, session, link)
        messages = _messages(event)
        if not messages:
            return Handled("ignored", "neither text nor a file")
        chatwoot_id = int(event["id"])

        assert self.send_once is not None, "the services set the send function"
        sent_ids: list[str] = []
        for index, message in enumerate(messages):  # each once: a repeated call sends the rest
            key = f"zapgate-chatwoot:{session}:{chatwoot_id}" + (f":{index}" if index else "")

            def also(claim: WriteGuard, part: int = index) -> WriteGuard:
                return _WithTwin(claim, tenant, session, conversation_id, chatwoot_id, part)

            try:
                sent = await self.send_once(
                    tenant, session, address_of(link.chat), message, key, also
                )
            except BadReply as error:  # Chatwoot marks the agent's message failed, with this
                if index:  # earlier parts went: their statuses must not hide this
                    await self._refused(tenant, session, conversation_id, chatwoot_id, index)
                raise InvalidInput(f"the reply cannot be sent on WhatsApp: {error}") from None
            if sent is not None:
                sent_ids.append(sent.id)
        if not sent_ids:
            return Handled("ignored", "sent before (a repeated call)")
        return Handled("sent", None, sent_ids[0])

    async def _refused(
        self, tenant: str, session: str, conversation_id: int, chatwoot_id: int, part: int
    ) -> None:
        async def job(unit: UnitOfWork) -> None:
            await repository.refused_part(unit, tenant, session, conversation_id, chatwoot_id, part)

        await self.committer.run(job)

    async def _remember(self, tenant: str, session: str, link: Conversation) -> None:
        async def job(unit: UnitOfWork) -> None:
            await repository.link_conversation(unit, tenant, session, link)

        await self.committer.run(job)


def _opened_there(conversation: dict[str, Any], conversation_id: int) -> Conversation | None:
    """The link of a conversation opened in Chatwoot, from its contact's phone number."""
    meta = conversation.get("meta")
    sender = meta.get("sender") if isinstance(meta, dict) else None
    if not isinstance(sender, dict):
        return None
    phone, contact_id = sender.get("phone_number"), sender.get("id")
    digits = phone.lstrip("+") if isinstance(phone, str) else ""
    if not digits.isdigit() or not 8 <= len(digits) <= 15 or not isinstance(contact_id, int):
        return None
    inbox = conversation.get("contact_inbox")
    source = inbox.get("source_id") if isinstance(inbox, dict) else None
    source_id = source if isinstance(source, str) else f"{MARKER}{digits}"
    return Conversation(f"{digits}@c.us", contact_id, conversation_id, source_id)


@dataclass(frozen=True, slots=True)
class _WithTwin:
    """The key's claim, and the reply's Chatwoot twin written with the reply."""

    claim: WriteGuard
    tenant: str
    session: str
    conversation_id: int
    chatwoot_id: int
    part: int

    async def guard(self, unit: UnitOfWork) -> None:
        await self.claim.guard(unit)

    def record(self, unit: UnitOfWork, result: Any) -> None:
        self.claim.record(unit, result)
        repository.add_twin(
            unit,
            self.tenant,
            self.session,
            result.id,
            self.conversation_id,
            self.chatwoot_id,
            self.part,
        )


def _signed_right(secret: str | None, body: bytes, headers: dict[str, str]) -> bool:
    """Whether the call is signed with ``secret`` (true when there is none: a Chatwoot before
    4.13 cannot sign, and the token is the credential then)."""
    if not secret:
        return True
    signature = headers.get(SIGNATURE_HEADER)
    if signature is None:
        return False
    stamp = headers.get(TIMESTAMP_HEADER, "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > SKEW_SECONDS:
        return False
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.encode(), f"sha256={digest}".encode())


def _event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError:
        raise InvalidInput("the body is not JSON") from None
    if not isinstance(event, dict):
        raise InvalidInput("the body is not a Chatwoot event (a JSON object)")
    return event


def _messages(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The reply in zapgate's send shape, in order: a message per file (by its URL, at most
    ``FILES_MAX``) with the text as the first caption (an audio takes none: with only audio,
    the text goes first on its own), or the text."""
    content = event.get("content")
    text = content if isinstance(content, str) and content.strip() else None
    attachments = event.get("attachments")
    files = [
        found
        for found in (attachments if isinstance(attachments, list) else [])
        if isinstance(found, dict) and isinstance(found.get("data_url"), str)
    ]
    messages: list[dict[str, Any]] = [
        {"type": FILE_TYPES.get(str(file.get("file_type")), "document"), "media": {"url": url}}
        for file in files[:FILES_MAX]
        if (url := file["data_url"])
    ]
    if text is not None:
        captioned = next((m for m in messages if m["type"] != "audio"), None)
        if captioned is None:
            messages.insert(0, {"text": text})
        else:
            captioned["caption"] = text
    return messages
