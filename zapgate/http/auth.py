"""The FastAPI dependency that admits a request: authentication, then the key's rate limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from zapgate.auth.scopes import Scope, check
from zapgate.auth.service import Principal
from zapgate.http.ratelimit import ADMITTED, remember_decision
from zapgate.limits.gate import Admission, Gate

_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_api_key = APIKeyHeader(name="X-Api-Key", auto_error=False, description="API key header")


async def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The caller, from ``Authorization: Bearer`` or ``X-Api-Key``."""
    admitted: Admission | None = request.scope.get(ADMITTED)
    if admitted is not None:  # the send fast lane admitted it, then handed it over
        return admitted.principal
    gate: Gate = request.app.state.services.gate
    presented = bearer.credentials if bearer is not None else api_key
    address = request.client.host if request.client else None
    admission = await gate.admit(presented, address)
    remember_decision(request.scope, admission.decision)
    return admission.principal


Caller = Annotated[Principal, Depends(current_principal)]
"""The authenticated caller, whatever it may do: routes take one of the scoped forms below."""


def needs(
    scope: Scope, default_session: bool = False, filtered: bool = False
) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, if it has ``scope`` for the route's session (its ``{session}``,
    the default session for ``default_session`` routes, else none); 403 ``forbidden`` if not.
    A ``filtered`` route shows a session-limited caller only its sessions, so only the scope is
    checked here."""

    async def scoped(request: Request, caller: Caller) -> Principal:
        if filtered:
            check(caller.scopes, None, scope, None)
            return caller
        if default_session:
            session: str | None = request.app.state.services.settings.default_session
        else:
            session = request.path_params.get("session")
        caller.require(scope, session)
        return caller

    scoped.__name__ = f"needs_{scope.value}"
    scoped.scope = scope  # type: ignore[attr-defined]  # read by the scope matrix test
    scoped.filtered = filtered  # type: ignore[attr-defined]
    return scoped


Admin = Annotated[Principal, Depends(needs(Scope.ADMIN))]
"""A caller with the ``admin`` scope: it manages the tenant."""
Sender = Annotated[Principal, Depends(needs(Scope.SEND))]
"""A caller with the ``send`` scope (``admin`` has it too)."""
Reader = Annotated[Principal, Depends(needs(Scope.READ))]
"""A caller with the ``read`` scope (every key has it)."""
Watcher = Annotated[Principal, Depends(needs(Scope.READ, filtered=True))]
"""``Reader`` for a route that shows a session-limited caller only its sessions (events)."""
Operator = Annotated[Principal, Depends(needs(Scope.OPERATOR))]
"""The operator: manages tenants and any tenant's keys."""
LegacySender = Annotated[Principal, Depends(needs(Scope.SEND, default_session=True))]
"""``Sender`` for the original ``/whatsapp/*`` routes, which use the default session."""
LegacyReader = Annotated[Principal, Depends(needs(Scope.READ, default_session=True))]
"""``Reader`` for the original ``/whatsapp/*`` routes."""
