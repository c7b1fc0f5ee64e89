"""Meta's error codes (the ``error.code`` of a Graph API answer, or of a ``failed`` status),
sorted into what a retry may fix and what it never will; judged by the code, not the HTTP status.
"""

from __future__ import annotations

from typing import Any

THROUGHPUT = 130429
"""The phone number sent faster than its tier allows: slow down."""
PAIR_RATE = 131056
"""Too many messages to one recipient in a short time: wait before the next to them."""

TRANSIENT = frozenset(
    {
        1,  # API unknown
        2,  # API service: temporarily down
        4,  # the app's call rate
        17,  # the user's call rate
        341,  # application limit reached
        613,  # calls within one hour
        80007,  # the WhatsApp Business Account's rate limit
        THROUGHPUT,
        131000,  # something went wrong
        131016,  # service unavailable
        131057,  # account in maintenance mode
        PAIR_RATE,
        133004,  # server temporarily unavailable
    }
)
AUTH = frozenset(
    {
        -2,  # the SSRF guard refused the base URL's address
        0,  # AuthException
        3,  # the app lacks the capability
        10,  # permission denied
        190,  # the access token expired or is invalid
        200,  # permission not granted
        131005,  # access denied
        131031,  # the business account is locked
        133010,  # the phone number is not registered
    }
)
"""Codes that say the session itself cannot send: it fails until its config is fixed, and
its messages wait in the outbox instead of failing one by one."""
HINTS = {
    131047: "more than 24 hours since the customer last wrote: only a template may be sent",
    131026: "undeliverable: the number is not on WhatsApp, or cannot take this message",
    131030: "the recipient is not in the test number's allowed list",
    131051: "this message type is not supported",
    131052: "Meta could not download the file",
    131053: "Meta could not take the uploaded file",
    131049: "Meta did not deliver it, to keep the recipient's experience healthy",
    132000: "the template's parameters do not match its placeholders",
    132001: "no such template in this language",
    132005: "the template's text is too long once filled in",
    132007: "the template breaks a formatting policy",
    132012: "a template parameter has the wrong format",
    132015: "the template is paused for low quality",
    132016: "the template is disabled",
    368: "the account is temporarily blocked for policy violations",
    THROUGHPUT: "sent faster than the phone number's throughput",
    PAIR_RATE: "too many messages to this recipient in a short time",
}


class GraphError(Exception):
    """What Meta answered instead of a result (``code`` -1: an answer without Meta's error)."""

    def __init__(self, code: int, title: str, details: str = "", http_status: int = 0) -> None:
        super().__init__(code, title)
        self.code = code
        self.title = title
        self.details = details
        self.http_status = http_status

    @property
    def transient(self) -> bool:
        """Whether trying again later may work (by the code; 5xx without one counts too)."""
        if self.code in TRANSIENT:
            return True
        return self.code == -1 and (self.http_status >= 500 or self.http_status in (0, 429))

    @property
    def auth(self) -> bool:
        """Whether the session's credentials or account are the problem."""
        return self.code in AUTH

    def __str__(self) -> str:
        said = f"Meta error {self.code}: {self.title}" if self.code >= 0 else self.title
        hint = HINTS.get(self.code)
        if hint and hint.lower() not in said.lower():
            said = f"{said} ({hint})"
        return f"{said}: {self.details}" if self.details else said


def from_body(body: Any, http_status: int) -> GraphError:
    """The error in a Graph API answer's JSON (``{"error": {...}}``), or one describing the
    answer when it holds none (code -1)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GraphError(-1, f"the Graph API answered HTTP {http_status}", "", http_status)
    title = error.get("error_user_title") or error.get("message") or "no message"
    return _error(error, title, error.get("error_user_msg"), http_status)


def from_status(errors: Any) -> GraphError:
    """The error of a ``failed`` status callback (its first ``errors`` entry)."""
    first = errors[0] if isinstance(errors, list) and errors else {}
    if not isinstance(first, dict):
        first = {}
    return _error(first, first.get("title") or first.get("message") or "the message failed")


def _error(
    entry: dict[str, Any], title: Any, fallback: Any = None, http_status: int = 0
) -> GraphError:
    """An error entry (``code``, ``error_data.details``) with the title chosen for it."""
    code = entry.get("code")
    data = entry.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    return GraphError(
        code if isinstance(code, int) else -1,
        _text(title),
        _text(details or fallback or ""),
        http_status,
    )


def _text(value: Any) -> str:
    return str(value)[:500]
