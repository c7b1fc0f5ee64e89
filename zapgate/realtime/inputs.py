"""What a socket may send (``auth``, ``subscribe``, ``unsubscribe``), checked and bounded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from zapgate.names import SESSION_NAME

MAX_SESSIONS = 100
"""Session rooms one socket may listen to."""
MAX_TOKEN_CHARS = 512
MAX_OFFSET = 2**63 - 1
_SESSION = re.compile(SESSION_NAME)


class InvalidInput(Exception):
    """Input a socket sent that is refused; ``message`` is the connect_error message."""

    def __init__(self, detail: str, message: str = "invalid_input") -> None:
        super().__init__(detail)
        self.detail = detail
        self.message = message

    def body(self) -> dict[str, str]:
        """The ack (or connect_error data) that tells the client why."""
        return {"error": "invalid_input", "detail": self.detail}


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """A checked ``auth`` payload; ``sessions`` None means the whole tenant."""

    token: str | None
    sessions: frozenset[str] | None
    offset: int | None


def connect_request(environ: dict[str, Any], auth: Any) -> ConnectRequest:
    """The request of a connecting socket, or InvalidInput."""
    if auth is None:
        return ConnectRequest(_header_token(environ), None, None)
    if not isinstance(auth, dict):
        raise InvalidInput("auth must be an object: {token, offset?, sessions?}")
    token = auth.get("token")
    if token is None:
        token = _header_token(environ)
    elif not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _printable(token):
        raise InvalidInput(
            f"token must be a string of at most {MAX_TOKEN_CHARS} printable ASCII characters"
        )
    sessions = session_names(auth.get("sessions", auth.get("session")))
    return ConnectRequest(token, sessions, _offset(auth.get("offset")))


def session_names(value: Any) -> frozenset[str] | None:
    """Sessions asked for at connect: a name or a list of names (empty: the whole tenant)."""
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset([session_name(value)])
    if not isinstance(value, list):
        raise InvalidInput("sessions must be a session name or a list of them")
    if len(value) > MAX_SESSIONS:
        raise InvalidInput(f"at most {MAX_SESSIONS} sessions per socket")
    return frozenset(session_name(name) for name in value) or None


def session_name(value: Any) -> str:
    """A valid session name, or InvalidInput (the value is never echoed back)."""
    if not isinstance(value, str) or len(value) > 64 or not _SESSION.fullmatch(value):
        raise InvalidInput(f"a session name matches {SESSION_NAME}")
    return value


def subscription(args: tuple[Any, ...]) -> str:
    """The session of a ``subscribe``/``unsubscribe`` event: exactly ``{session: <name>}``."""
    if len(args) != 1 or not isinstance(args[0], dict) or "session" not in args[0]:
        raise InvalidInput("send {session: <name>}")
    return session_name(args[0]["session"])


def _offset(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_OFFSET:
        raise InvalidInput(f"offset is a seq from 0 to {MAX_OFFSET}", "invalid_offset")
    return value


def _header_token(environ: dict[str, Any]) -> str | None:
    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def _printable(token: str) -> bool:
    """Keys are printable ASCII (like any HTTP header value): no NUL, no lone surrogate."""
    return token.isascii() and token.isprintable()
