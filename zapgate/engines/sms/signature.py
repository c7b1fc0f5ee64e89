"""``X-Twilio-Signature``: how the provider signs each callback, checked in constant time.

The signed text is the URL the provider called (scheme, host, path and query, as configured)
followed by every form parameter's name and value, by name in code point order; a name sent
several times contributes each distinct value, in order. The signature is the base64 of that
text's HMAC-SHA1 with the account's auth token. The body's bytes are not signed, only the
parameters, so the form is parsed before the check (and nothing is done with it until it passes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

HEADER = "x-twilio-signature"


class BadSignature(Exception):
    """The callback is not signed with the session's auth token for this URL."""


def signed_text(url: str, params: Iterable[tuple[str, str]]) -> str:
    """The text the provider signs for a POST of ``params`` to ``url``."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    return url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))


def signature_of(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """The ``X-Twilio-Signature`` value for a POST of ``params`` to ``url``."""
    text = signed_text(url, params).encode()
    return base64.b64encode(hmac.new(auth_token.encode(), text, hashlib.sha1).digest()).decode()


def verify(
    url: str, params: Iterable[tuple[str, str]], header: str | None, auth_token: str
) -> None:
    """BadSignature unless ``header`` is the signature of ``params`` posted to ``url``."""
    expected = signature_of(url, params, auth_token).encode()
    given = (header or "").strip().encode("ascii", "replace")
    if not hmac.compare_digest(expected, given):
        raise BadSignature("X-Twilio-Signature is missing or wrong")
