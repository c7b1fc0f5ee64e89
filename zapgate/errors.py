"""The one error tree. Rendered to HTTP in exactly one place (``zapgate.http.errors``)."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A failure the caller can act on: a stable code, an HTTP status and a detail."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: Any = None) -> None:
        super().__init__(detail if isinstance(detail, str) else self.code)
        self.detail = detail
        self.headers: dict[str, str] = {}


class InvalidInput(AppError):
    status = 422
    code = "invalid_input"


class InvalidInteractive(InvalidInput):
    """Meta's rules across an interactive message's fields (distinct ids, 10 rows in all)."""

    code = "invalid_interactive"


class InvalidPhoneNumber(InvalidInput):
    code = "invalid_phone_number"


class InvalidFallback(InvalidInput):
    """A fallback that cannot be: not an SMS session, or not a phone number to send it to."""

    code = "invalid_fallback"


class InvalidRecipient(InvalidInput):
    """An address the session's channel cannot reach (a Telegram chat id on WhatsApp...)."""

    code = "invalid_recipient"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class TenantSuspended(Forbidden):
    code = "tenant_suspended"


class NotFound(AppError):
    status = 404
    code = "not_found"


class SessionNotFound(NotFound):
    code = "session_not_found"


class TenantNotFound(NotFound):
    code = "tenant_not_found"


class MessageNotFound(NotFound):
    code = "message_not_found"


class MediaNotFound(NotFound):
    code = "media_not_found"


class KeyNotFound(NotFound):
    code = "key_not_found"


class ChatNotFound(NotFound):
    code = "chat_not_found"


class ContactNotFound(NotFound):
    code = "contact_not_found"


class GroupNotFound(NotFound):
    code = "group_not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class NotWhatsApp(Conflict):
    """The original ``/whatsapp/*`` routes, on a default session of another channel."""

    code = "not_a_whatsapp_session"


class TenantExists(Conflict):
    code = "tenant_exists"


class NotConfirmed(Conflict):
    code = "not_confirmed"


class SessionNotReady(Conflict):
    code = "session_not_ready"


class SessionExists(Conflict):
    code = "session_exists"


class SessionAlreadyStarted(Conflict):
    code = "session_already_started"


class SessionNotRunning(Conflict):
    code = "session_not_running"


class NoQrCode(Conflict):
    code = "no_qr_code"


class NotPaired(Conflict):
    code = "not_paired"


class MessageNotEditable(Conflict):
    """Only a sent text (sent, delivered or read) can be edited."""

    code = "message_not_editable"


class MessageNotRevocable(Conflict):
    """Only a queued or sent message of this account, not deleted yet, can be deleted."""

    code = "message_not_revocable"


class EngineRefused(Conflict):
    """The engine would not do it (WhatsApp's time limits, a message it does not know)."""

    code = "engine_refused"


class Unsupported(AppError):
    status = 422
    code = "unsupported"


class UnsupportedMessageType(Unsupported):
    code = "unsupported_message_type"


class NotOnWhatsApp(InvalidInput):
    code = "not_on_whatsapp"


class MediaRejected(InvalidInput):
    """The media is not what its message type needs (an executable sent as an image), or
    its URL could not be fetched."""

    code = "media_rejected"


class LinkExpired(Forbidden):
    code = "link_expired"


class EngineUnavailable(AppError):
    status = 422
    code = "engine_unavailable"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class IdempotencyKeyMismatch(AppError):
    status = 422
    code = "idempotency_key_mismatch"


class IdempotencyKeyInProgress(Conflict):
    code = "idempotency_key_in_progress"


class IdempotentReplay(AppError):
    """Not a failure: the stored answer to a request already made with this Idempotency-Key."""

    code = "idempotent_replay"

    def __init__(self, status: int, body: Any) -> None:
        super().__init__("replayed")
        self.status = status
        self.body = body


class TooMany(AppError):
    """Over a limit (429); ``headers`` says when to retry and what the policy is."""

    status = 429


class RateLimited(TooMany):
    """Too many requests in too short a time: retry after ``Retry-After`` seconds."""

    code = "rate_limited"

    def __init__(self, detail: str, headers: dict[str, str], retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.headers = headers
        self.retry_after = retry_after


class QuotaExceeded(TooMany):
    """A count quota (sessions, webhooks, queued messages, open streams) is full."""

    code = "quota_exceeded"


class Unavailable(AppError):
    status = 503
    code = "unavailable"
