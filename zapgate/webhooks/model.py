"""Webhook subscriptions, their deliveries and the attempts of each delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zapgate.clock import to_iso


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

    @classmethod
    def from_row(cls, row: Any) -> Webhook:
        """Build from a ``webhooks`` row mapping."""
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
        )

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
        )

    def public(self, attempts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The wire form, with its attempts when given."""
        body: dict[str, Any] = {
            "id": self.id,
            "webhook_id": self.webhook_id,
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

    @property
    def succeeded(self) -> bool:
        """2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300
