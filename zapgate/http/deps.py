"""Shared route helpers: the services of the running app, validated path parts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request

from zapgate.names import SESSION_NAME
from zapgate.services import Services

SessionName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=SESSION_NAME, examples=["default"])
]


def services_of(request: Request) -> Services:
    """The services of the app serving ``request``."""
    services: Services = request.app.state.services
    return services
