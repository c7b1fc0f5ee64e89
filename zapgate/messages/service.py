"""Message use cases: accept a send into the outbox, record inbound messages, sends and acks."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.committer import Committer, Refusal, UnitOfWork
from zapgate.db.gather import Gathering
from zapgate.engines.base import AckStatus, InboundMessage
from zapgate.errors import MessageNotFound
from zapgate.events.model import EventDraft, EventType
from zapgate.idempotency.service import Claim
from zapgate.ids import new_id
from zapgate.limits.service import LimitService
from zapgate.messages import repository
from zapgate.messages.depth import OutboxDepth
from zapgate.messages.model import Direction, Message, MessageStatus, statuses_before
from zapgate.phone import chat_id
from zapgate.validation import scrub_text

EARLY_ACKS_KEPT = 10_000
RECENTLY_RECEIVED = 256
"""Received messages kept for :meth:`MessageService.just_received` (the oldest go first)."""


class MessageService:
    """Writes go through the committer (one transaction with their event); reads go to the store."""

    def __init__(self, engine: AsyncEngine, committer: Committer, limits: LimitService) -> None:
        self._engine = engine
        self._committer = committer
        self._limits = limits
        self.depth = OutboxDepth()
        self._early_acks: OrderedDict[tuple[str, str, str], set[AckStatus]] = OrderedDict()
        self.on_queued: Callable[[str, str], None] = lambda _tenant, _session: None
        self._received: dict[str, Message] = {}
        self._sends: Gathering[tuple[str, str], tuple[Message, str], Message | None] = Gathering(
            committer, self._write_sends, lambda key: key[0]
        )
        self._acks: Gathering[tuple[str, str], tuple[str, AckStatus], Message | None] = Gathering(
            committer, self._write_acks, lambda key: key[0]
        )

    async def accept(
        self,
        tenant: str,
        session: str,
        own_number: str,
        to: str,
        text: str,
        claim: Claim | None = None,
    ) -> Message:
        """Queue an outbound text with its ``message.queued`` event; the sender sends it."""
        now = now_ms()
        message = Message(
            id=new_id("msg"),
            tenant=tenant,
            session=session,
            direction=Direction.OUT,
            chat_id=chat_id(to),
            sender=own_number,
            recipient=chat_id(to),
            kind="text",
            text=text,
            status=MessageStatus.QUEUED,
            error=None,
            attempts=0,
            engine_message_id=None,
            created_at=now,
            updated_at=now,
        )

        limits = await self._limits.of(tenant)

        async def job(unit: UnitOfWork) -> Message | Refusal:
            if claim is not None:
                await claim.guard(unit)
            refusal = await self.depth.reserve(unit, tenant, session, limits)
            if refusal is not None:
                return refusal
            unit.require_session(tenant, session)
            repository.insert(unit, message)
            unit.emit(_event(message, EventType.MESSAGE_QUEUED))
            if claim is not None:
                claim.record(unit, message)
            return message

        stored = await self._committer.run(job)
        self.on_queued(tenant, session)
        return stored

    async def record_inbound(self, tenant: str, session: str, inbound: InboundMessage) -> Message:
        """Store a received message with its ``message.received`` event."""
        message = Message(
            id=new_id("msg"),
            tenant=tenant,
            session=session,
            direction=Direction.IN,
            chat_id=chat_id(scrub_text(inbound.sender)),
            sender=chat_id(scrub_text(inbound.sender)),
            recipient=chat_id(scrub_text(inbound.recipient)),
            kind=inbound.kind,
            text=scrub_text(inbound.text) if inbound.text is not None else None,
            status=MessageStatus.RECEIVED,
            error=None,
            attempts=0,
            engine_message_id=scrub_text(inbound.engine_message_id)
            if inbound.engine_message_id
            else None,
            created_at=inbound.timestamp_ms,
            updated_at=now_ms(),
        )

        async def job(unit: UnitOfWork) -> Message:
            repository.insert(unit, message)
            unit.emit(_event(message, EventType.MESSAGE_RECEIVED))
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

    async def record_sent(self, message: Message, engine_message_id: str) -> Message | None:
        """Mark ``message`` sent, with any acks that arrived before (in the same transaction).
        A session's sends recorded while its previous ones wait for the writer go with them."""
        key = (message.tenant, message.session)
        sent = await self._sends.submit(key, (message, engine_message_id))
        self._early_acks.pop((*key, engine_message_id), None)
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
            unit.emit(_event(sent, EventType.MESSAGE_SENT))
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

    async def fail_queued(self, tenant: str, session: str, reason: str) -> int:
        """Fail every queued message of a session (it is gone); returns how many."""
        failed = 0
        while page := await self.queued(tenant, session, 500):
            for message in page:
                failed += await self.record_failed(message, reason) is not None
        return failed

    async def record_attempt(self, message: Message, reason: str) -> Message:
        """Count a failed attempt that will be retried (no event: the message stays queued)."""
        values = {"attempts": message.attempts + 1, "error": reason, "updated_at": now_ms()}

        async def job(unit: UnitOfWork) -> Message | None:
            return await repository.transition(
                unit.connection,
                repository.by_id(message.tenant, message.id),
                [MessageStatus.QUEUED.value],
                values,
            )

        updated = await self._committer.run(job, background=message.tenant)
        return updated or replace(message, attempts=message.attempts + 1)

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
            unit.emit(_event(message, EventType.MESSAGE_STATUS))
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

    @staticmethod
    async def _apply(
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
            unit.emit(_event(updated, event_type))
        return updated

    def _remember_early_ack(
        self, tenant: str, session: str, engine_message_id: str, status: AckStatus
    ) -> None:
        self._early_acks.setdefault((tenant, session, engine_message_id), set()).add(status)
        while len(self._early_acks) > EARLY_ACKS_KEPT:
            self._early_acks.popitem(last=False)


def _event(message: Message, event_type: str) -> EventDraft:
    return EventDraft(message.tenant, message.session, event_type, message.public())
