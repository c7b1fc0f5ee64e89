"""The HTTP side of deliveries: SSRF-checked, pinned to checked addresses, no redirects.

A failed attempt is recorded with a reason the tenant may read (it is shown over the API), so
the reason never names what a host resolved to, an internal address or resolver details; the
full error goes to the server's log instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from zapgate.clock import now_ms
from zapgate.validation import scrub_text
from zapgate.webhooks import http11, ssrf
from zapgate.webhooks.http11 import Http11Client
from zapgate.webhooks.model import AttemptOutcome

log = logging.getLogger(__name__)


class WebhookClient:
    """Posts signed bodies; every outcome, failure included, comes back as an AttemptOutcome.

    Requests go through :class:`~zapgate.webhooks.http11.Http11Client`: URLs checked by the SSRF
    guard, kept-alive connections to the addresses it checked when each was opened."""

    def __init__(self, allowlist: ssrf.Allowlist, timeout_seconds: float) -> None:
        self._allowlist = allowlist
        self._timeout = timeout_seconds
        self._http: Http11Client | None = None

    async def start(self) -> None:
        """Open the connection pool."""
        self._http = Http11Client(self._allowlist)

    async def close(self) -> None:
        """Close the pool."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> AttemptOutcome:
        """One attempt."""
        started = time.monotonic()
        try:
            return await self._post(url, body, headers, started)
        except Exception as error:  # never let one subscription's bad data stop the dispatcher
            _log_failure(url, error)
            return _failed(started, public_reason(error, self._timeout))

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], started: float
    ) -> AttemptOutcome:
        assert self._http is not None, "start() the client first"
        async with asyncio.timeout(self._timeout):
            answer = await self._http.post(url, body, headers)
        status = answer.status
        error = None if 200 <= status < 300 else _http_error(status, answer.headers)
        return AttemptOutcome(
            status_code=status,
            duration_ms=_elapsed_ms(started),
            error=error,
            excerpt=scrub_text(answer.excerpt.decode(errors="replace")),
            retry_after_seconds=retry_after(answer.headers.get("retry-after")),
        )


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now_ms() / 1000, 0.0)


def _http_error(status: int, headers: Any) -> str:
    if 300 <= status < 400:
        location = headers.get("location", "?")
        return f"HTTP {status} redirect to {location} (redirects are not followed)"
    return f"HTTP {status}"


def public_reason(error: BaseException, timeout_seconds: float | None) -> str:
    """Why an attempt failed, in words that reveal nothing of the network behind zapgate."""
    if isinstance(error, ssrf.UnsafeAddress):
        return f"refused: {error.public}"
    if isinstance(error, ssrf.UnsafeUrl):  # about the URL as the tenant wrote it
        return f"refused: {error}"
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout_seconds or 0:g} s"
    if isinstance(error, http11.LookupFailed):
        return "DNS lookup failed: the host name could not be resolved"
    if isinstance(error, http11.ConnectFailed):
        return f"could not connect: {_os_reason(error.os_error)}"
    if isinstance(error, http11.Disconnected):
        return "the receiver closed the connection without answering"
    if isinstance(error, ssl.SSLCertVerificationError):
        return "TLS failed: the receiver's certificate could not be verified"
    if isinstance(error, ssl.SSLError):
        return "TLS failed: the handshake did not complete"
    if isinstance(error, OSError):
        return f"connection failed: {_os_reason(error)}"
    return f"could not send: {type(error).__name__}"


def _os_reason(error: BaseException) -> str:
    """The errno's standard wording (never the message, which may carry addresses)."""
    number = getattr(error, "errno", None)
    if isinstance(number, int) and number > 0:
        return os.strerror(number).lower()
    return type(error).__name__


def _log_failure(url: str, error: Exception) -> None:
    host = urlsplit(url).hostname or "?"
    if isinstance(error, ssrf.UnsafeUrl):
        log.warning("webhook delivery to %s refused: %s", host, error)
    elif isinstance(error, OSError | TimeoutError):
        log.info("webhook delivery to %s failed: %s: %s", host, type(error).__name__, error)
    else:
        log.warning("webhook delivery to %s failed", host, exc_info=error)


def _failed(started: float, error: str) -> AttemptOutcome:
    return AttemptOutcome(None, _elapsed_ms(started), scrub_text(error), None)


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
