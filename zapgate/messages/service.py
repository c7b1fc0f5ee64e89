"""Message use cases: accept a send into the outbox, record inbound messages, sends and acks."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.audit import actor as actors
from zapgate.channels import channel_of
from zapgate.clock import now_ms, to_iso
from zapgate.db.committer import Committer, Refusal, UnitOfWork
from zapgate.db.gather import Gathering
from zapgate.engines.base import (
    SEND_TYPES,
    AckStatus,
    Contact,
    InboundMessage,
    Location,
    Media,
    OutboundMessage,
    PermanentEngineError,
    Poll,
)
from zapgate.errors import AppError, MessageNotFound, Unavailable
from zapgate.events.model import EventDraft, EventType
from zapgate.ids import new_id
from zapgate.limits.service import LimitService
from zapgate.media import repository as media_repository
from zapgate.media.model import MediaDraft, StoredMedia
from zapgate.media.store import MediaMissing
from zapgate.messages import repository
from zapgate.messages.depth import OutboxDepth
from zapgate.messages.model import Direction, Message, MessageStatus, statuses_before
from zapgate.messages.revisions import MessageRevisions
from zapgate.phone import address_of, chat_id
from zapgate.validation import scrub, scrub_text

if TYPE_CHECKING:
    from zapgate.media.service import MediaService

EARLY_ACKS_KEPT = 10_000
RECENTLY_RECEIVED = 256
"""Received messages kept for :meth:`MessageService.just_received` (the oldest go first)."""
TRACED = frozenset({EventType.MESSAGE_SENT, EventType.MESSAGE_STATUS})
"""The events of an outbound message that name the request that queued it when no request is
being served as they are written (the outbox's send, the engine's acks)."""


class WriteGuard(Protocol):
    """What a write checks and adds (an Idempotency-Key's claim, a fallback being settled)."""

    async def guard(self, unit: UnitOfWork) -> None: ...
    def record(self, unit: UnitOfWork, result: Any) -> None: ...


class MessageService:
    """Writes go through the committer (one transaction with their event); reads go to the store."""

    def __init__(self, engine: AsyncEngine, committer: Committer, limits: LimitService) -> None:
        self._engine = engine
        self._committer = committer
        self._limits = limits
        self.depth = OutboxDepth()
        self.media: MediaService | None = None
        """Where files are (set by ``zapgate.services``): without it, messages carry none."""
        self._early_acks: OrderedDict[tuple[str, str, str], set[AckStatus]] = OrderedDict()
        self._early_failures: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        """Failures the engine reported before the message's ``sent`` was recorded (a Cloud
        API callback can outrun the send's answer), applied with it."""
        self.on_queued: Callable[[str, str], None] = lambda _tenant, _session: None
        self._received: dict[str, Message] = {}
        self._sends: Gathering[tuple[str, str], tuple[Message, str], Message | None] = Gathering(
            committer, self._write_sends, lambda key: key[0]
        )
        self._acks: Gathering[tuple[str, str], tuple[str, AckStatus], Message | None] = Gathering(
            committer, self._write_acks, lambda key: key[0]
        )
        self.revisions = MessageRevisions(committer, self)
        """Edits, deletions and poll votes of stored messages."""

    async def accept(
        self,
        tenant: str,
        session: str,
        own_number: str,
        to: str,
        text: str | None,
        claim: WriteGuard | None = None,
        *,
        kind: str = "text",
        content: dict[str, Any] | None = None,
        media: MediaDraft | None = None,
        message_id: str | None = None,
        also: Callable[[UnitOfWork, Message], None] | None = None,
    ) -> Message:
        """Queue an outbound message with its ``message.queued`` event; the sender sends it.

        ``text`` is a text or a caption; ``content`` the public fields of other types; a
        ``media`` file (already in the store) is recorded for the tenant in the same write;
        ``also`` writes what goes with the message (an SMS fallback), in that write too.
        """
        now = now_ms()
        message = Message(
            id=message_id or new_id("msg"),
            tenant=tenant,
            session=session,
            direction=Direction.OUT,
            chat_id=chat_id(to),
            sender=own_number,
            recipient=chat_id(to),
            kind=kind,
            text=text,
            status=MessageStatus.QUEUED,
            error=None,
            attempts=0,
            engine_message_id=None,
            created_at=now,
            updated_at=now,
            content=content or None,
            request_id=actors.request_id(),
        )

        limits = await self._limits.of(tenant)

        async def job(unit: UnitOfWork) -> Message | Refusal:
            nonlocal message
            if claim is not None:
                await claim.guard(unit)
            refusal = await self.depth.reserve(unit, tenant, session, limits)
            if refusal is not None:
                return refusal
            unit.require_session(tenant, session)
            if media is not None:
                attached = await self._attach(unit, message, media, now)
                if isinstance(attached, Refusal):
                    return attached
                message = attached
            repository.insert(unit, message)
            if also is not None:
                also(unit, message)
            unit.emit(self._event(message, EventType.MESSAGE_QUEUED))
            if claim is not None:
                claim.record(unit, message)
            return message

        stored = await self._committer.run(job)
        self.on_queued(tenant, session)
        return stored

    async def _attach(
        self, unit: UnitOfWork, message: Message, media: MediaDraft, now: int
    ) -> Message | Refusal:
        """``message`` with its file recorded for the tenant (or found recorded already)."""
        stored, made = await media_repository.claim(unit.connection, message.tenant, media, now)
        if made and not media.written and not await self._media_present(stored):
            # swept between the ingest (which found the bytes) and now: the sender retries
            return Refusal(Unavailable("the file was being removed; send it again"))
        described = stored.describe(media.filename)
        if message.text is not None:
            described["caption"] = message.text
        content = {**(message.content or {}), "media": described}
        return replace(message, content=content, media_id=stored.id)

    async def _media_present(self, stored: StoredMedia) -> bool:
        return self.media is not None and await self.media.store.exists(stored.key)

    async def record_inbound(self, tenant: str, session: str, inbound: InboundMessage) -> Message:
        """Store a received message, and its file, with its ``message.received`` event."""
        content = inbound_content(inbound)
        media = await self._ingest_inbound(tenant, inbound, content)
        message = Message(
            id=new_id("msg"),
            tenant=tenant,
            session=session,
            direction=Direction.IN,
            chat_id=chat_id(scrub_text(inbound.sender)),
            sender=chat_id(scrub_text(inbound.sender)),
            recipient=chat_id(scrub_text(inbound.recipient)),
            kind=inbound.kind if inbound.kind in SEND_TYPES else "text",
            text=scrub_text(inbound.text) if inbound.text is not None else None,
            status=MessageStatus.RECEIVED,
            error=None,
            attempts=0,
            engine_message_id=scrub_text(inbound.engine_message_id)
            if inbound.engine_message_id
            else None,
            created_at=inbound.timestamp_ms,
            updated_at=now_ms(),
            content=content or None,
        )
        linked = {inbound.reply_to, inbound.target} - {None}

        async def job(unit: UnitOfWork) -> Message | Refusal:
            nonlocal message
            if inbound.once and message.engine_message_id is not None:  # delivered again?
                known = await repository.received(
                    unit.connection, tenant, session, message.engine_message_id
                )
                if known is not None:
                    return known
            if linked:
                message = await self._link(unit, message, inbound)
            if media is not None:
                attached = await self._attach(unit, message, media, message.updated_at)
                if isinstance(attached, Refusal):
                    return attached
                message = attached
            repository.insert(unit, message)
            unit.emit(self._event(message, EventType.MESSAGE_RECEIVED))
            return message

        stored = await self._committer.run(job)
        self._received[stored.id] = stored
        while len(self._received) > RECENTLY_RECEIVED:
            self._received.pop(next(iter(self._received)))
        return stored

    def just_received(self, message_id: str) -> Message | None:
        """The message ``record_inbound`` just stored as ``message_id`` (taken once), so the
        simulator's route answers without reading back what it wrote; None if not at hand."""
        return self._received.pop(message_id, None)

    async def _ingest_inbound(
        self, tenant: str, inbound: InboundMessage, content: dict[str, Any]
    ) -> MediaDraft | None:
        """The received file, stored; a file that cannot be kept is noted in ``content``."""
        if inbound.media is None or self.media is None:
            return None
        try:
            return await self.media.ingest_bytes(
                tenant,
                inbound.media.data,
                "document",
                inbound.media.mime_type,
                inbound.media.filename,
            )
        except AppError as refused:  # too large, or empty: the message is kept without it
            content["media_error"] = str(refused.detail)
            return None

    async def _link(self, unit: UnitOfWork, message: Message, inbound: InboundMessage) -> Message:
        """``message`` with the engine ids it quotes or reacts to turned into message ids."""
        wanted = [i for i in (inbound.reply_to, inbound.target) if i is not None]
        found = await repository.ids_by_engine_ids(
            unit.connection, message.tenant, message.session, wanted
        )
        content = dict(message.content or {})
        if inbound.reply_to is not None:
            content["reply_to"] = found.get(inbound.reply_to)
        if inbound.target is not None:
            content["message_id"] = found.get(inbound.target)
        return replace(message, content=content)

    async def record_sent(self, message: Message, engine_message_id: str) -> Message | None:
        """Mark ``message`` sent, with any acks that arrived before (in the same transaction).
        A session's sends recorded while its previous ones wait for the writer go with them."""
        key = (message.tenant, message.session)
        sent = await self._sends.submit(key, (message, engine_message_id))
        self._early_acks.pop((*key, engine_message_id), None)
        self._early_failures.pop((*key, engine_message_id), None)
        return sent

    async def _write_sends(
        self, unit: UnitOfWork, key: tuple[str, str], sends: list[tuple[Message, str]]
    ) -> list[Message | None]:
        """The queued ones of ``sends`` become sent: one read and one executemany for all."""
        tenant, session = key
        now = now_ms()
        queued = await repository.queued_by_ids(unit.connection, tenant, [m.id for m, _ in sends])
        answers: list[Message | None] = []
        moved: list[Message] = []
        for message, engine_message_id in sends:
            stored = queued.pop(message.id, None)  # popped: a repeated send moves once
            if stored is None:
                answers.append(None)
                continue
            sent = replace(
                stored,
                status=MessageStatus.SENT,
                engine_message_id=engine_message_id,
                error=None,
                attempts=stored.attempts + 1,
                updated_at=now,
            )
            moved.append(sent)
            answers.append(sent)
        # written now, not at the flush: acks later in this batch must find the engine ids
        await repository.mark_sent(unit.connection, tenant, moved)
        for sent in moved:
            unit.emit(self._event(sent, EventType.MESSAGE_SENT))
            await self.depth.release(unit, tenant, session)
        for index, current in enumerate(answers):
            if current is not None and current.engine_message_id is not None:
                answers[index] = await self._apply_early_acks(unit, current) or current
        return answers

    async def _apply_early_acks(self, unit: UnitOfWork, sent: Message) -> Message | None:
        """Acks of ``sent`` that arrived before its ``sent`` record, in progress order."""
        assert sent.engine_message_id is not None
        engine_id = sent.engine_message_id
        early = self._early_acks.get((sent.tenant, sent.session, engine_id), ())
        by_engine = repository.by_engine_id(sent.tenant, sent.session, engine_id)
        current = None
        for ack in sorted(early, key=list(AckStatus).index):
            target = MessageStatus(ack.value)
            later: dict[str, object] = {"status": target.value, "updated_at": now_ms()}
            current = (
                await self._apply(unit, by_engine, target, later, EventType.MESSAGE_STATUS)
                or current
            )
        reason = self._early_failures.get((sent.tenant, sent.session, engine_id))
        if reason is not None:
            current = await self._undelivered(unit, by_engine, reason) or current
        return current

    async def record_failed(self, message: Message, reason: str) -> Message | None:
        """Mark ``message`` failed with ``reason`` (terminal)."""
        values: dict[str, object] = {
            "status": MessageStatus.FAILED.value,
            "error": reason,
            "attempts": message.attempts + 1,
            "updated_at": now_ms(),
        }
        where = repository.by_id(message.tenant, message.id)

        async def job(unit: UnitOfWork) -> Message | None:
            failed = await self._apply(
                unit, where, MessageStatus.SENT, values, EventType.MESSAGE_STATUS
            )
            if failed is not None:  # it was queued
                await self.depth.release(unit, message.tenant, message.session)
            return failed

        return await self._committer.run(job, background=message.tenant)

    async def record_undelivered(
        self, tenant: str, session: str, engine_message_id: str, reason: str
    ) -> Message | None:
        """A sent message the engine could not deliver after all: ``failed`` with ``reason``
        (only from ``sent``: one delivered or read stays so)."""
        where = repository.by_engine_id(tenant, session, engine_message_id)

        async def job(unit: UnitOfWork) -> Message | None:
            failed = await self._undelivered(unit, where, reason)
            if failed is None:  # decided inside the writer: it cannot race the ``sent`` record
                known = await repository.stored_engine_ids(
                    unit.connection, tenant, session, {engine_message_id}
                )
                if not known:  # not recorded as sent yet: failed when it is
                    key = (tenant, session, engine_message_id)
                    self._early_failures[key] = reason
                    while len(self._early_failures) > EARLY_ACKS_KEPT:
                        self._early_failures.popitem(last=False)
            return failed

        return await self._committer.run(job, background=tenant)

    async def _undelivered(
        self, unit: UnitOfWork, where: repository.Match, reason: str
    ) -> Message | None:
        """The matched message, if ``sent``, moved to ``failed`` with ``reason``."""
        values: dict[str, object] = {
            "status": MessageStatus.FAILED.value,
            "error": reason,
            "updated_at": now_ms(),
        }
        failed = await repository.transition(
            unit.connection, where, [MessageStatus.SENT.value], values
        )
        if failed is not None:
            unit.emit(self._event(failed, EventType.MESSAGE_STATUS))
        return failed

    async def fail_queued(self, tenant: str, session: str, reason: str) -> int:
        """Fail every queued message of a session (it is gone); returns how many."""
        failed = 0
        while page := await self.queued(tenant, session, 500):
            for message in page:
                failed += await self.record_failed(message, reason) is not None
        return failed

    async def record_attempt(self, message: Message, reason: str) -> Message | None:
        """Count a failed attempt that will be retried (no event: the message stays queued);
        None when it is no longer queued (cancelled)."""
        values = {"attempts": message.attempts + 1, "error": reason, "updated_at": now_ms()}

        async def job(unit: UnitOfWork) -> Message | None:
            return await repository.transition(
                unit.connection,
                repository.by_id(message.tenant, message.id),
                [MessageStatus.QUEUED.value],
                values,
            )

        return await self._committer.run(job, background=message.tenant)

    async def record_ack(
        self, tenant: str, session: str, engine_message_id: str, status: AckStatus
    ) -> Message | None:
        """Advance an outbound message to ``status``; never moves it back. A session's acks
        that arrive while its previous ones wait for the writer are written with them."""
        return await self._acks.submit((tenant, session), (engine_message_id, status))

    async def _write_acks(
        self, unit: UnitOfWork, key: tuple[str, str], acks: list[tuple[str, AckStatus]]
    ) -> list[Message | None]:
        """One statement per status, in progress order, and the events in that order."""
        tenant, session = key
        now = now_ms()
        moved: dict[tuple[str, AckStatus], Message] = {}
        for status in sorted({status for _, status in acks}, key=list(AckStatus).index):
            ids = sorted({engine_id for engine_id, wanted in acks if wanted is status})
            target = MessageStatus(status.value)
            found = await repository.advance_by_engine_ids(
                unit.connection, tenant, session, ids, target, now
            )
            for engine_id, wanted in acks:  # in the order they came
                if wanted is status and engine_id in found:
                    moved.setdefault((engine_id, status), found[engine_id])
        unmatched = {engine_id for engine_id, status in acks if (engine_id, status) not in moved}
        if unmatched:  # decided inside the writer, so it cannot race the ``sent`` record
            stored = await repository.stored_engine_ids(unit.connection, tenant, session, unmatched)
            for engine_id, status in acks:
                if engine_id in unmatched and engine_id not in stored:
                    self._remember_early_ack(tenant, session, engine_id, status)
        for message in moved.values():  # in progress order: a message's events never go back
            unit.emit(self._event(message, EventType.MESSAGE_STATUS))
        answered: set[tuple[str, AckStatus]] = set()
        answers: list[Message | None] = []
        for ack in acks:  # a repeated ack moved nothing: only the first gets the message
            answers.append(None if ack in answered else moved.get(ack))
            answered.add(ack)
        return answers

    async def get(self, tenant: str, message_id: str) -> Message:
        """One message, or MessageNotFound."""
        message = await repository.get(self._engine, tenant, message_id)
        if message is None:
            raise MessageNotFound(f"no message {message_id!r}")
        return message

    async def history(self, query: repository.HistoryQuery) -> list[Message]:
        """A page of history, newest first."""
        return await repository.history(self._engine, query)

    async def queued(self, tenant: str, session: str, limit: int) -> list[Message]:
        """The session's outbox, oldest first."""
        return await repository.queued(self._engine, tenant, session, limit)

    async def _apply(
        self,
        unit: UnitOfWork,
        where: repository.Match,
        target: MessageStatus,
        values: dict[str, object],
        event_type: str,
    ) -> Message | None:
        updated = await repository.transition(
            unit.connection, where, statuses_before(target), values
        )
        if updated is not None:
            unit.emit(self._event(updated, event_type))
        return updated

    def event_of(self, message: Message, event_type: str) -> EventDraft:
        """The event of ``message`` (see ``_event``)."""
        return self._event(message, event_type)

    def _event(self, message: Message, event_type: str) -> EventDraft:
        """The event of ``message``; its file, if any, with a signed link (not the bytes)."""
        payload = message.public()
        described = payload.get("media")
        if isinstance(described, dict) and self.media is not None and described.get("id"):
            url, expires_at = self.media.link(message.tenant, str(described["id"]))
            expires = to_iso(expires_at * 1000)
            payload["media"] = {**described, "url": url, "url_expires_at": expires}
        request = message.request_id if event_type in TRACED else None
        return EventDraft(
            message.tenant,
            message.session,
            event_type,
            payload,
            request_id=request,
            channel=channel_of(message.chat_id),
        )

    async def outbound(self, message: Message) -> OutboundMessage:
        """What the engine is asked to send for ``message``: its file read from the store, and
        the messages it quotes or reacts to by their engine ids.

        PermanentEngineError when one of those is missing (a file swept, a message never sent).
        """
        to = address_of(message.recipient)
        content = message.content
        if not content:
            preview = message.kind == "text" and _has_link(message.text)
            return OutboundMessage(message.id, to, message.kind, message.text, link_preview=preview)
        engine_ids = await self._engine_ids(message, content)
        media = None
        described = content.get("media")
        if isinstance(described, dict) and self.media is not None:
            try:
                data = await self.media.read(message.tenant, str(described["sha256"]))
            except MediaMissing:
                raise PermanentEngineError("the message's file is gone from the store") from None
            media = Media(data, str(described["mime_type"]), described.get("filename"))
        place = content.get("location")
        card = content.get("contact")
        poll = content.get("poll")
        return OutboundMessage(
            message.id,
            to,
            message.kind,
            message.text,
            media=media,
            voice=bool(content.get("voice")),
            location=Location(**place) if isinstance(place, dict) else None,
            contact=Contact(card["name"], tuple(card["phones"]), card["vcard"])
            if isinstance(card, dict)
            else None,
            target=engine_ids.get("message_id"),
            emoji=content.get("emoji"),
            reply_to=engine_ids.get("reply_to"),
            link_preview=bool(content.get("link_preview", _has_link(message.text))),
            poll=Poll(poll["name"], tuple(poll["options"]), poll["selectable_count"])
            if isinstance(poll, dict)
            else None,
            template=content.get("template"),
            interactive=content.get("interactive"),
        )

    async def _engine_ids(self, message: Message, content: dict[str, Any]) -> dict[str, str]:
        """The engine ids of the messages ``content`` quotes (``reply_to``) or reacts to."""
        found: dict[str, str] = {}
        for field in ("reply_to", "message_id"):
            linked = content.get(field)
            if not isinstance(linked, str):
                continue
            other = await repository.get(self._engine, message.tenant, linked)
            if other is None or other.engine_message_id is None:
                if field == "message_id":
                    raise PermanentEngineError(f"message {linked} was never sent or received")
                continue  # a reply whose quote is unknown goes out unquoted
            found[field] = other.engine_message_id
        return found

    def _remember_early_ack(
        self, tenant: str, session: str, engine_message_id: str, status: AckStatus
    ) -> None:
        self._early_acks.setdefault((tenant, session, engine_message_id), set()).add(status)
        while len(self._early_acks) > EARLY_ACKS_KEPT:
            self._early_acks.popitem(last=False)


def _has_link(text: str | None) -> bool:
    """Whether a text holds a link (a preview is asked for unless the send said no)."""
    return text is not None and ("://" in text or "www." in text)


def inbound_content(inbound: InboundMessage) -> dict[str, Any]:
    """The public fields of a message's type-specific parts (its file is added when stored)."""
    content: dict[str, Any] = {}
    if inbound.kind == "audio":
        content["voice"] = inbound.voice
    if inbound.location is not None:
        place = inbound.location
        content["location"] = {
            "latitude": place.latitude,
            "longitude": place.longitude,
            "name": scrub_text(place.name) if place.name else None,
            "address": scrub_text(place.address) if place.address else None,
        }
    if inbound.contact is not None:
        card = inbound.contact
        content["contact"] = {
            "name": scrub_text(card.name),
            "phones": [scrub_text(p) for p in card.phones],
            "vcard": scrub_text(card.vcard),
        }
    if inbound.kind == "reaction":
        content["emoji"] = scrub_text(inbound.emoji or "")
    if inbound.poll is not None:
        content["poll"] = {
            "name": scrub_text(inbound.poll.name),
            "options": [scrub_text(option) for option in inbound.poll.options],
            "selectable_count": inbound.poll.selectable_count,
        }
    if inbound.sender_phone:
        content["from_phone"] = scrub_text(inbound.sender_phone)
    if inbound.raw:
        content["raw"] = scrub(inbound.raw)
    return content
