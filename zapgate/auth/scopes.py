"""What a key may do: scopes, what each grants, and the check every route makes.

``admin`` manages the tenant (sessions, webhooks, keys) and does everything below it; ``send``
sends and reads; ``read`` only reads. ``operator`` (held by the operator's key, beside ``admin``
of the ``default`` tenant) manages tenants and any tenant's keys, and grants nothing else.
A key may also be limited to some sessions: it then uses
only routes about one of them, and the routes that show several (events, the session list,
messages by id) show it only theirs; routes about the whole tenant (webhooks, keys) refuse it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from zapgate.errors import Forbidden


class Scope(StrEnum):
    ADMIN = "admin"
    SEND = "send"
    READ = "read"
    OPERATOR = "operator"
    METRICS = "metrics"
    """``GET /metrics`` and nothing else (a key of the default tenant: the figures span tenants)."""


_GRANTS = {
    Scope.METRICS: frozenset({Scope.METRICS}),
    Scope.OPERATOR: frozenset({Scope.OPERATOR}),
    Scope.ADMIN: frozenset({Scope.ADMIN, Scope.SEND, Scope.READ}),
    Scope.SEND: frozenset({Scope.SEND, Scope.READ}),
    Scope.READ: frozenset({Scope.READ}),
}
STORED_SEPARATOR = " "


def granted(scopes: Iterable[str]) -> frozenset[str]:
    """Every scope the given ones grant (unknown names grant nothing)."""
    result: set[str] = set()
    for name in scopes:
        if name in _GRANTS:
            result |= _GRANTS[Scope(name)]
    return frozenset(result)


def stored(scopes: Iterable[str]) -> str:
    """The scopes as stored: space-separated, in a fixed order."""
    return STORED_SEPARATOR.join(scope for scope in Scope if scope in set(scopes))


def parse_stored(text: str) -> frozenset[str]:
    """The scopes a stored value grants."""
    return granted(text.split())


def check(
    scopes: frozenset[str],
    sessions: frozenset[str] | None,
    needed: Scope,
    session: str | None,
) -> None:
    """Forbidden unless ``scopes`` grant ``needed`` and ``sessions`` (None: all) allow
    ``session`` (None: the route is about no particular session)."""
    if needed not in scopes:
        raise Forbidden(f"this key lacks the {needed.value!r} scope")
    if sessions is None:
        return
    if session is None:
        raise Forbidden("this key is limited to some sessions; this route is not about one")
    if session not in sessions:
        raise Forbidden(f"this key is not allowed to use session {session!r}")
