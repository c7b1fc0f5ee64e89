"""SMS fallback: a WhatsApp text sent with ``fallback`` goes again by SMS when it is not
delivered within ``after_seconds`` or fails.

Every node watches the due fallbacks (one query a second, through ``ix_fallbacks_due``). Whoever
settles one first wins: the SMS is queued in the same write that marks the fallback ``sent`` and
gives the WhatsApp message its ``fallback_id``, so it is queued once, whatever crashes or how
many nodes look. A WhatsApp message still queued when its time comes is cancelled first (else
both would go); one already sent stays as it is (it may still arrive: both are linked).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.channels import SMS_SUFFIX, Channel
from zapgate.clock import now_ms
from zapgate.db.committer import UnitOfWork
from zapgate.engines.sms.segments import sms_fields
from zapgate.errors import AppError, MessageNotFound
from zapgate.fallbacks import repository as fallbacks
from zapgate.ids import new_id
from zapgate.messages import repository
from zapgate.messages.model import Message, MessageStatus
from zapgate.phone import number_of
from zapgate.tasks import cancel_and_wait

if TYPE_CHECKING:
    from zapgate.messages.service import MessageService
    from zapgate.sessions.service import SessionManager

log = logging.getLogger(__name__)
LOOK_SECONDS = 1.0
BATCH = 100
ARRIVED = {MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.PLAYED}


class Settled(Exception):
    """The fallback was settled by someone else: this write is dropped."""


@dataclass(frozen=True, slots=True)
class FallbackClaim:
    """Inside the SMS's write: mark the fallback sent (or drop the write if it was settled) and
    give the WhatsApp message the SMS's id."""

    original: Message
    sms_id: str

    async def guard(self, unit: UnitOfWork) -> None:
        tenant, message_id = self.original.tenant, self.original.id
        if not await fallbacks.settle(
            unit.connection, tenant, message_id, fallbacks.SENT, self.sms_id
        ):
            raise Settled(message_id)
        content = {**(self.original.content or {}), "fallback_id": self.sms_id}
        every = [status.value for status in MessageStatus]
        where = repository.by_id(tenant, message_id)
        await repository.transition(unit.connection, where, every, {"content": content})

    def record(self, unit: UnitOfWork, result: Any) -> None:
        """Nothing to store beyond the SMS itself."""


class FallbackWatcher:
    """Sends the SMS of each due fallback (see the module)."""

    def __init__(
        self,
        database: AsyncEngine,
        messages: MessageService,
        sessions: SessionManager,
    ) -> None:
        self._database = database
        self._messages = messages
        self._sessions = sessions
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="fallbacks")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def run_once(self) -> int:
        """Settle every fallback due now; how many were looked at."""
        due = await fallbacks.all_tenants_due(self._database, now_ms(), BATCH)
        for one in due:
            try:
                await self._settle(one)
            except Exception:  # one bad fallback never stops the others
                log.exception("fallback of %s failed; it is tried again", one.message_id)
        return len(due)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("looking for due fallbacks failed")
            await asyncio.sleep(LOOK_SECONDS)  # wall-clock: due times are wall-clock too

    async def _settle(self, due: fallbacks.Due) -> None:
        try:
            message = await self._messages.get(due.tenant, due.message_id)
        except MessageNotFound:
            await self._skip(due)
            return
        if message.status in ARRIVED or not message.text:
            await self._skip(due)
            return
        if message.status is MessageStatus.QUEUED:  # not sent yet: it must not go as well
            try:
                await self._messages.revisions.cancelled(message)
            except AppError:
                return  # it moved meanwhile (sent, or delivered): looked at again next time
        try:
            sms = await self._sessions.require(due.tenant, due.sms_session)
        except AppError:
            await self._skip(due)  # the SMS session is gone
            return
        if self._sessions.channel(sms) != Channel.SMS:
            await self._skip(due)
            return
        to = "+" + number_of(message.recipient) + SMS_SUFFIX
        sms_id = new_id("msg")
        own = self._sessions.own_number(due.tenant, due.sms_session)
        try:
            await self._messages.accept(
                due.tenant,
                due.sms_session,
                own,
                to,
                message.text,
                FallbackClaim(message, sms_id),
                content={"fallback_of": message.id, **sms_fields(message.text)},
                message_id=sms_id,
            )
        except Settled:
            return

    async def _skip(self, due: fallbacks.Due) -> None:
        async with self._database.begin() as connection:
            await fallbacks.settle(connection, due.tenant, due.message_id, fallbacks.SKIPPED, None)
