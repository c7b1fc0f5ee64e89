"""The provider's error codes (Twilio's, which compatible providers share), sorted into what a
retry may fix, what fails the session, and what fails only the message; judged by the code
first, then by the HTTP status when the answer holds no code."""

from __future__ import annotations

from typing import Any

AUTH_FAILED = 20003
"""The account SID and auth token do not match (or the token was rotated)."""
UNDELIVERED = 30003
TRANSIENT = frozenset(
    {
        20429,  # too many requests
        20500,  # internal server error
        20503,  # service unavailable
        14107,  # the SMS send rate limit of the account
        21611,  # the sender's queue of messages is full
        30001,  # queue overflow
    }
)
AUTH = frozenset(
    {
        -2,  # the SSRF guard refused the API base's address
        AUTH_FAILED,
        20005,  # the account is not active (suspended or closed)
        20008,  # a test account's credentials for the live API
    }
)
"""Codes that say the session itself cannot send: it fails until its config is fixed, and its
messages wait in the outbox instead of failing one by one."""
HINTS = {
    AUTH_FAILED: "the account SID or auth token is wrong",
    20404: "no such resource: check the account SID and the API base",
    21211: "the 'To' number is not a valid phone number",
    21408: "sending to this region is not enabled for the account",
    21606: "the 'from' number cannot send SMS to this destination",
    21610: "the recipient replied STOP: they have unsubscribed from this sender",
    21612: "this sender cannot reach the 'To' number",
    21614: "the 'To' number is not a mobile number",
    21617: "the text is longer than 1,600 characters",
    30003: "the handset is unreachable (off, or out of coverage)",
    30004: "the recipient blocked the message",
    30005: "unknown destination: the number does not exist",
    30006: "the number is a landline or its carrier cannot take SMS",
    30007: "the carrier filtered the message",
    30008: "the carrier did not say why",
}


class ProviderError(Exception):
    """What the provider answered instead of a result (``code`` -1: an answer without one)."""

    def __init__(self, code: int, message: str, http_status: int = 0) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.http_status = http_status

    @property
    def transient(self) -> bool:
        """Whether trying again later may work: by the code, else 429, 5xx or no answer."""
        if self.code in TRANSIENT:
            return True
        return self.code not in AUTH and (self.http_status >= 500 or self.http_status in (0, 429))

    @property
    def auth(self) -> bool:
        """Whether the session's credentials or account are the problem."""
        return self.code in AUTH or (self.code == -1 and self.http_status == 401)

    def __str__(self) -> str:
        said = f"SMS provider error {self.code}: {self.message}" if self.code >= 0 else self.message
        hint = HINTS.get(self.code)
        if hint and hint.lower() not in said.lower():
            said = f"{said} ({hint})"
        return said


def from_body(body: Any, http_status: int) -> ProviderError:
    """The error in an answer's JSON (``{"code", "message", "more_info", "status"}``), or one
    describing the answer when it holds none (code -1)."""
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        return ProviderError(-1, f"the SMS provider answered HTTP {http_status}", http_status)
    message = body.get("message") if isinstance(body, dict) else None
    return ProviderError(code, _text(message or "no message"), http_status)


def from_status(code: Any, message: Any) -> ProviderError:
    """The error of an ``undelivered`` or ``failed`` status callback (``ErrorCode``, and
    ``ErrorMessage`` when the provider sends one)."""
    number = int(code) if isinstance(code, str) and code.isdigit() else -1
    said = _text(message) if message else ""
    if number < 0:
        return ProviderError(-1, said or "the message was not delivered")
    return ProviderError(number, said or HINTS.get(number, "the message was not delivered"))


def _text(value: Any) -> str:
    return str(value)[:500]
