"""The provider's callbacks: the signature checked first, then an inbound SMS or a status
reported.

Both arrive as ``application/x-www-form-urlencoded`` POSTs to the session's callback URL: an
inbound SMS (``MessageSid``, ``From``, ``To``, ``Body``, ``NumMedia``, ``SmsStatus=received``;
the number's "a message comes in" webhook) or a status of a sent one (``MessageSid``,
``MessageStatus``, ``ErrorCode``; the ``StatusCallback`` the engine asked for). Every parameter
of an inbound SMS is kept in the message's ``raw`` (MMS files stay there as ``MediaUrl<N>``: they
are not downloaded); unknown parameters and statuses never fail a callback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

from zapgate.channels import SMS_SUFFIX
from zapgate.clock import now_ms
from zapgate.engines.base import AckStatus, EngineEvent, InboundMessage, SendFailed
from zapgate.engines.sms import signature
from zapgate.engines.sms.errors import from_status

ACKS = {
    "sent": AckStatus.SENT,
    "delivered": AckStatus.DELIVERED,
    "read": AckStatus.READ,  # channels with read receipts (RCS); never for SMS
}
FAILED = frozenset({"undelivered", "failed"})
PENDING = frozenset({"accepted", "scheduled", "queued", "sending", "canceled"})
"""Statuses before the message left (or a scheduled one called off): nothing to report."""
RECEIVED = frozenset({"received", "receiving"})
FIELDS_MAX = 1000
"""Form parameters read at most (a provider sends a few dozen)."""


class BadCallback(Exception):
    """The body is not a form (not UTF-8, or too many fields)."""


class CallbackSink(Protocol):
    """Where a callback's contents go: the session's messages and events."""

    async def message(self, message: InboundMessage) -> str: ...
    async def ack(self, engine_message_id: str, status: AckStatus) -> None: ...
    async def event(self, event: EngineEvent) -> None: ...


@dataclass(slots=True)
class Handled:
    """What a callback held (for the log)."""

    messages: int = 0
    statuses: int = 0


def parse(body: bytes) -> list[tuple[str, str]]:
    """The form's parameters, in order (BadCallback when the body is not a form)."""
    try:
        text = body.decode("utf-8")
        return parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=FIELDS_MAX
        )
    except (UnicodeDecodeError, ValueError):
        raise BadCallback("the body is not a UTF-8 form") from None


def checked(
    body: bytes, url: str | None, header: str | None, auth_token: str
) -> list[tuple[str, str]]:
    """The parameters of a callback whose signature is right (BadSignature if not, and when
    there is no URL to check it against)."""
    if url is None:
        raise signature.BadSignature("the session has no public_url to check callbacks against")
    try:
        params = parse(body)
    except BadCallback:
        raise signature.BadSignature("the body is not a form a signature could cover") from None
    signature.verify(url, params, header, auth_token)
    return params


async def report(params: list[tuple[str, str]], sink: CallbackSink, handled: Handled) -> None:
    """Report one callback (a received SMS, or a status of a sent one) to ``sink``."""
    form = dict(params)  # a repeated name: its last value
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not sid:
        return
    if status in RECEIVED or (status is None and "From" in form and "Body" in form):
        if form.get("From"):
            await sink.message(_inbound(sid, form))
            handled.messages += 1
    elif status in ACKS:
        await sink.ack(sid, ACKS[status])
        handled.statuses += 1
    elif status in FAILED:
        reason = str(from_status(form.get("ErrorCode"), form.get("ErrorMessage")))
        await sink.event(SendFailed(sid, reason, now_ms()))
        handled.statuses += 1


def _inbound(sid: str, form: dict[str, str]) -> InboundMessage:
    """A received SMS in zapgate's terms; every parameter kept as ``raw``."""
    return InboundMessage(
        engine_message_id=sid,
        sender=form["From"] + SMS_SUFFIX,
        recipient=form.get("To", "") + SMS_SUFFIX,
        kind="text",
        text=form.get("Body", ""),
        timestamp_ms=now_ms(),
        raw=dict(form),
        once=True,
    )
