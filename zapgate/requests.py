"""The id of the request being served (``X-Request-Id``), for logs: set per request, read by
the log formatter, so every line a request causes names it."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_GIVEN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id(given: bytes | None) -> str:
    """The caller's ``X-Request-Id`` when it is a sane token, else a new one."""
    if given:
        text = given.decode("latin-1")
        if _GIVEN.match(text):
            return text
    return "req_" + secrets.token_hex(8)


def from_headers(headers: list[tuple[bytes, bytes]]) -> str:
    """The request id for a request with these (ASGI) headers."""
    for name, value in headers:
        if name == b"x-request-id":
            return request_id(value)
    return request_id(None)
