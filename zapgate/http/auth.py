"""The FastAPI dependency that authenticates a request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from zapgate.auth.service import Authenticator, Principal

_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_api_key = APIKeyHeader(name="X-Api-Key", auto_error=False, description="API key header")


async def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The caller, from ``Authorization: Bearer`` or ``X-Api-Key``."""
    authenticator: Authenticator = request.app.state.services.auth
    presented = bearer.credentials if bearer is not None else api_key
    return await authenticator.authenticate(presented)


Caller = Annotated[Principal, Depends(current_principal)]
