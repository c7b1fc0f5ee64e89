"""Subscriptions to the event log (webhooks, sinks, session integrations), their deliveries
and the attempts of each delivery."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from zapgate.clock import to_iso
from zapgate.events.model import Event
from zapgate.sessions import sealing


class Kind:
    """What a subscription delivers to: one dispatcher serves every kind."""

    WEBHOOK = "webhook"
    RABBITMQ = "rabbitmq"
    NATS = "nats"
    REDIS = "redis"
    CHATWOOT = "chatwoot"
    BOT = "bot"

    SINKS = (RABBITMQ, NATS, REDIS)
    INTEGRATIONS = (CHATWOOT, BOT)


CHAT_LANES = frozenset({Kind.BOT})
"""Kinds whose deliveries are ordered per chat instead of per session: a bot answers each chat
on its own, so a slow answer in one chat holds up no other."""
LANE_CHAT_MAX = 128
"""Longer chat ids (none WhatsApp makes) share their session's lane."""


def lane_of(kind: str, event: Event) -> str | None:
    """The lane a delivery of ``event`` to a subscription of ``kind`` is sent in, when not
    its session's: ``"{session} {chat}"`` (a session name has no space) for ``CHAT_LANES``."""
    if kind not in CHAT_LANES or event.session is None:
        return None
    chat = event.payload.get("chat_id")
    if not isinstance(chat, str) or not chat or len(chat) > LANE_CHAT_MAX:
        return None
    return f"{event.session} {chat}"


CONFIG_SECRETS = frozenset({"url", "api_token", "token", "webhook_secret"})
"""Config values sealed at rest (a broker URL with its password, API tokens, secrets)."""


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    tenant: str
    url: str
    event_types: list[str]
    sessions: list[str]
    headers: dict[str, str]
    active: bool
    secret: str
    previous_secret: str | None
    previous_secret_until: int | None
    cursor_seq: int
    consecutive_failures: int
    disabled_reason: str | None
    created_at: int
    updated_at: int
    kind: str = Kind.WEBHOOK
    config: dict[str, Any] = field(default_factory=dict)
    """A sink's or integration's settings, opened (``seal_config`` seals them for storing)."""

    @classmethod
    def from_row(cls, row: Any) -> Webhook:
        """Build from a ``webhooks`` row mapping."""
        owner = f"{row['tenant_id']}/{row['id']}"
        return cls(
            id=row["id"],
            tenant=row["tenant_id"],
            url=row["url"],
            event_types=list(row["event_types"] or []),
            sessions=list(row["sessions"] or []),
            headers=dict(row["headers"] or {}),
            active=bool(row["active"]),
            secret=row["secret"],
            previous_secret=row["previous_secret"],
            previous_secret_until=row["previous_secret_until"],
            cursor_seq=row["cursor_seq"],
            consecutive_failures=row["consecutive_failures"],
            disabled_reason=row["disabled_reason"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            kind=row.get("kind") or Kind.WEBHOOK,
            config=sealing.unseal(row.get("config") or {}, owner, CONFIG_SECRETS),
        )

    @property
    def integration_session(self) -> str | None:
        """The session of a session integration (Chatwoot, a bot); None for other kinds."""
        if self.kind not in Kind.INTEGRATIONS or not self.sessions:
            return None
        return self.sessions[0]

    def wants(self, event_type: str, session: str | None) -> bool:
        """Whether an event of this type and session goes to this subscription."""
        type_ok = not self.event_types or event_type in self.event_types
        session_ok = not self.sessions or session in self.sessions
        return type_ok and session_ok

    def signing_secrets(self, now_ms: int) -> list[str]:
        """The secrets to sign with: the current one, plus the previous one during its grace."""
        secrets = [self.secret]
        if self.previous_secret and (self.previous_secret_until or 0) > now_ms:
            secrets.append(self.previous_secret)
        return secrets

    def public(self) -> dict[str, Any]:
        """The wire form (never the secret)."""
        return {
            "id": self.id,
            "url": self.url,
            "events": self.event_types,
            "sessions": self.sessions,
            "headers": self.headers,
            "active": self.active,
            "disabled_reason": self.disabled_reason,
            "consecutive_failures": self.consecutive_failures,
            "created_at": to_iso(self.created_at),
            "updated_at": to_iso(self.updated_at),
        }


def seal_config(tenant: str, subscription_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as stored: its secrets sealed for this subscription."""
    return sealing.seal(config, f"{tenant}/{subscription_id}", CONFIG_SECRETS)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    tenant: str
    webhook_id: str
    event_id: str
    event_seq: int
    session: str | None
    status: str
    attempts: int
    next_attempt_at: int
    last_status_code: int | None
    last_error: str | None
    created_at: int
    updated_at: int
    request_id: str | None = None
    """The request that caused its event (``Event.request_id``), sent as
    ``X-Zapgate-Request-Id``."""
    lane: str | None = None
    """The ordered lane it is sent in when not its session's (a bot's chat: ``lane_of``)."""

    @property
    def lane_key(self) -> str | None:
        """The lane it waits in: deliveries of one lane go one after the other."""
        return self.session if self.lane is None else self.lane

    @classmethod
    def from_row(cls, row: Any) -> Delivery:
        """Build from a ``webhook_deliveries`` row mapping."""
        return cls(
            id=row["id"],
            tenant=row["tenant_id"],
            webhook_id=row["webhook_id"],
            event_id=row["event_id"],
            event_seq=row["event_seq"],
            session=row["session"],
            status=row["status"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            last_status_code=row["last_status_code"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            request_id=row.get("request_id"),
            lane=row.get("lane"),
        )

    def public(
        self, attempts: list[dict[str, Any]] | None = None, owner: str = "webhook_id"
    ) -> dict[str, Any]:
        """The wire form, with its attempts when given (``owner``: the subscription's field)."""
        body: dict[str, Any] = {
            "id": self.id,
            owner: self.webhook_id,
            "event_id": self.event_id,
            "event_seq": self.event_seq,
            "session": self.session,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": to_iso(self.next_attempt_at) if self.status == "pending" else None,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "created_at": to_iso(self.created_at),
            "updated_at": to_iso(self.updated_at),
            "request_id": self.request_id,
        }
        if attempts is not None:
            body["attempt_log"] = attempts
        return body


class DeliveryStatus:
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one HTTP attempt gave."""

    status_code: int | None
    duration_ms: int
    error: str | None
    excerpt: str | None
    retry_after_seconds: float | None = None
    refused: bool = False
    """The target refused zapgate itself (a broker refused the credentials): when this
    delivery runs out of tries, its subscription is disabled, with ``error`` as the reason."""

    delivered: bool = False
    """Taken without an HTTP status (a broker confirmed it)."""
    final: bool = False
    """Failed in a way another try would repeat (a bot's reply that is no message): the
    delivery fails now, without the tries left."""

    @classmethod
    def timed(
        cls,
        started: float,
        status_code: int | None,
        error: str | None,
        excerpt: str | None = None,
        *,
        refused: bool = False,
        final: bool = False,
    ) -> AttemptOutcome:
        """An outcome of an attempt begun at ``started`` (``time.monotonic()``): delivered
        when nothing went wrong."""
        duration = int((time.monotonic() - started) * 1000)
        return cls(
            status_code,
            duration,
            error,
            excerpt,
            refused=refused,
            delivered=error is None,
            final=final,
        )

    @property
    def succeeded(self) -> bool:
        """Delivered: a 2xx answer, or taken by a broker, with nothing wrong (a bot's 2xx
        answer may hold a reply that is no message)."""
        ok = self.status_code is not None and 200 <= self.status_code < 300
        return (ok or self.delivered) and self.error is None
