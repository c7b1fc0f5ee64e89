"""What a tenant reads about a failed attempt names no address, resolver or internal detail."""

from __future__ import annotations

import errno
import socket

import pytest

from zapgate.webhooks import http11, ssrf
from zapgate.webhooks.client import public_reason

INTERNAL = "10.0.0.5"
CASES = [
    (ssrf.UnsafeAddress(f"x.example resolves to {INTERNAL}"), "refused: the host resolves to a"),
    (ssrf.UnsafeUrl("10.1.2.3 is a private address"), "refused: 10.1.2.3 is a private address"),
    (socket.gaierror(socket.EAI_NONAME, f"no such name (via {INTERNAL})"), "connection failed: "),
    (OSError(errno.ECONNREFUSED, f"Connect call failed ('{INTERNAL}', 80)"), "connection failed: "),
    (ConnectionResetError(errno.ECONNRESET, f"reset by {INTERNAL}"), "connection failed: "),
    (http11.Disconnected(f"{INTERNAL} went away"), "the receiver closed the"),
    (http11.ConnectFailed(OSError(errno.ECONNREFUSED, f"to {INTERNAL}")), "could not connect: "),
    (http11.LookupFailed(f"no such name (via {INTERNAL})"), "DNS lookup failed: "),
    (TimeoutError(), "timed out after 15 s"),
    (ValueError(f"internal state {INTERNAL}"), "could not send: ValueError"),
]


@pytest.mark.parametrize(("error", "public"), CASES, ids=lambda c: type(c).__name__)
def test_public_reasons_never_carry_the_detail(error: Exception, public: str) -> None:
    reason = public_reason(error, 15)
    assert reason.startswith(public), reason
    assert INTERNAL not in reason


def test_the_errno_gives_the_standard_wording() -> None:
    error = OSError(errno.ECONNREFUSED, f"Connect call failed ('{INTERNAL}', 80)")
    assert public_reason(error, 15) == "connection failed: connection refused"
