"""The FastAPI dependency that admits a request: authentication, then the key's rate limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

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
