"""The Chatwoot mirror's sender: a session's message events become Chatwoot messages.

- ``message.received``: the chat's contact and conversation are found or made (once; remembered
  per chat), and the message is posted as ``incoming``, its file attached;
- ``message.sent`` of a message that did not come from Chatwoot (sent over the API, by a bot):
  posted as ``outgoing``, so agents see the whole conversation;
- ``message.status`` of a message with a Chatwoot twin: its status is set there (Chatwoot 4.2
  and later; an older one answers 404, and the status is left).

Every message zapgate posts has ``source_id`` ``zapgate:<message id>``: the callback skips
those (Chatwoot sends every new message back to the inbox's webhook). A conversation deleted in
Chatwoot is made again at the next message. Person chats (a phone number) only: a group or a
LID has no number to make a contact with, and is skipped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.db.committer import Committer, UnitOfWork
from zapgate.events.model import EventType
from zapgate.integrations import repository
from zapgate.integrations.chatwoot.client import Attachment, ChatwootClient, ChatwootError
from zapgate.integrations.model import MARKER
from zapgate.integrations.repository import Conversation
from zapgate.media.service import MediaService
from zapgate.webhooks import ssrf
from zapgate.webhooks.client import public_reason
from zapgate.webhooks.model import AttemptOutcome, Delivery, Webhook
from zapgate.webhooks.sender import HttpPool

log = logging.getLogger(__name__)
PERSON = "@c.us"
STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "played": "read"}
ATTACHMENT_MAX = 16 * 1024 * 1024


class ChatwootMirror(HttpPool):
    """The sender of ``chatwoot`` subscriptions (``Dispatcher(senders=...)``)."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        allowlist: ssrf.Allowlist,
        timeout_seconds: float,
        media: MediaService | None = None,
    ) -> None:
        super().__init__(allowlist)
        self._database = database
        self._committer = committer
        self._timeout = timeout_seconds
        self._media = media

    async def send(self, subscription: Webhook, delivery: Delivery, body: bytes) -> AttemptOutcome:
        """Mirror one event; a skipped one succeeds with a note saying why."""
        started = time.monotonic()
        try:
            note = await self._mirror(subscription, orjson.loads(body))
        except ChatwootError as error:
            status = error.status or None
            final = not error.retryable and not error.refused  # another try gets the same
            return AttemptOutcome.timed(
                started, status, error.public_reason, refused=error.refused, final=final
            )
        except Exception as error:
            log.warning("chatwoot mirror of %s failed", subscription.id, exc_info=error)
            return AttemptOutcome.timed(started, None, public_reason(error, self._timeout))
        return AttemptOutcome.timed(started, None, None, note)

    async def _mirror(self, sink: Webhook, envelope: dict[str, Any]) -> str:
        payload = envelope.get("payload") or {}
        session = str(envelope.get("session") or "")
        event_type = envelope.get("type")
        chat = str(payload.get("chat_id") or "")
        client = self._client(sink)
        if event_type == EventType.MESSAGE_STATUS:
            return await self._status(client, sink.tenant, payload)
        if not chat.endswith(PERSON):
            return "skipped: only chats with a phone number are mirrored"
        if event_type == EventType.MESSAGE_RECEIVED and payload.get("direction") == "in":
            kind = "incoming"
        elif event_type == EventType.MESSAGE_SENT and payload.get("direction") == "out":
            if await repository.twin_of(self._database, sink.tenant, str(payload["id"])):
                return "skipped: it came from Chatwoot"
            kind = "outgoing"
        else:
            return "skipped: nothing to mirror"
        attachment = await self._attachment(sink.tenant, payload)
        content = payload.get("text")
        if content is None and attachment is None:
            content = f"[{payload.get('type', 'message')}]"
        conversation = await self._conversation(client, sink, session, chat)
        source = f"{MARKER}{payload['id']}"
        try:
            posted = await client.post_message(
                conversation.conversation_id, content, kind, source, attachment
            )
        except ChatwootError as error:
            if not error.not_found:
                raise
            await self._forget(sink.tenant, session, chat)  # deleted there: open another
            conversation = await self._conversation(client, sink, session, chat)
            posted = await client.post_message(
                conversation.conversation_id, content, kind, source, attachment
            )
        await self._link(sink.tenant, session, str(payload["id"]), conversation, posted)
        return f"posted as Chatwoot message {posted}"

    def _client(self, sink: Webhook) -> ChatwootClient:
        config = sink.config
        return ChatwootClient(
            config["base_url"],
            int(config["account_id"]),
            config["api_token"],
            self._allowlist,
            self._timeout,
            http=self.http,
        )

    async def _status(self, client: ChatwootClient, tenant: str, payload: dict[str, Any]) -> str:
        twin = await repository.twin_of(self._database, tenant, str(payload.get("id")))
        status = payload.get("status")
        if twin is None:
            return "skipped: the message has no Chatwoot twin"
        mapped = "failed" if status == "failed" else STATUSES.get(str(status))
        if mapped is None:
            return f"skipped: status {status} has no Chatwoot twin"
        if twin.part and mapped != "failed":  # a later file of the agent's message
            shows = f"Chatwoot message {twin.chatwoot_id} shows its first"
            return f"skipped: part {twin.part} ({shows})"
        if twin.part_failed and mapped != "failed":
            return f"skipped: a part of Chatwoot message {twin.chatwoot_id} failed (that shows)"
        error = payload.get("error") if mapped == "failed" else None
        try:
            await client.update_status(
                twin.conversation_id, twin.chatwoot_id, mapped, str(error) if error else None
            )
        except ChatwootError as failure:
            if failure.not_found:  # a Chatwoot before 4.2, or the message is gone there
                return "skipped: Chatwoot has no such message status to set"
            raise
        return f"Chatwoot message {twin.chatwoot_id} is {mapped}"

    async def _conversation(
        self, client: ChatwootClient, sink: Webhook, session: str, chat: str
    ) -> Conversation:
        found = await repository.conversation_of(self._database, sink.tenant, session, chat)
        if found is not None:
            return found
        inbox = int(sink.config["inbox_id"])
        phone = "+" + chat.removesuffix(PERSON)
        contact = await client.find_contact(phone, inbox)
        if contact is None:
            contact = await client.create_contact(inbox, phone, phone, chat)
        source = contact.source_id or f"{MARKER}{session}:{chat}"
        conversation_id = await client.create_conversation(inbox, contact.id, source)
        link = Conversation(chat, contact.id, conversation_id, source)

        async def job(unit: UnitOfWork) -> None:
            await repository.link_conversation(unit, sink.tenant, session, link)

        await self._committer.run(job, background=sink.tenant)
        return link

    async def _forget(self, tenant: str, session: str, chat: str) -> None:
        async def job(unit: UnitOfWork) -> None:
            await repository.unlink_conversation(unit, tenant, session, chat)

        await self._committer.run(job, background=tenant)

    async def _link(
        self, tenant: str, session: str, message_id: str, conversation: Conversation, posted: int
    ) -> None:
        async def job(unit: UnitOfWork) -> None:
            await repository.link_message(
                unit, tenant, session, message_id, conversation.conversation_id, posted
            )

        await self._committer.run(job, background=tenant)

    async def _attachment(self, tenant: str, payload: dict[str, Any]) -> Attachment | None:
        media = payload.get("media")
        if self._media is None or not isinstance(media, dict) or not media.get("id"):
            return None
        try:
            found = await self._media.get(tenant, str(media["id"]))
            if found.size > ATTACHMENT_MAX:
                return None
            data = await self._media.read(tenant, found.sha256)
        except Exception:  # swept or unreadable: the text still goes
            log.info("chatwoot mirror: media %s of %s not attached", media.get("id"), tenant)
            return None
        name = found.filename or f"{payload.get('type', 'file')}"
        return name, found.mime_type, data
