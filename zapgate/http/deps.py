"""Shared route helpers: the services of the running app, validated path parts."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Request
from pydantic import BeforeValidator

from zapgate.names import SESSION_NAME
from zapgate.services import Services

SessionName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=SESSION_NAME, examples=["default"])
]


def services_of(request: Request) -> Services:
    """The services of the app serving ``request``."""
    services: Services = request.app.state.services
    return services


ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?(?:[Zz]|[+-]\d{2}:?\d{2})?$"
)


def _iso_text(value: Any) -> Any:
    """Only ISO 8601 text: pydantic alone would also take numbers as Unix times."""
    if not isinstance(value, str) or not ISO_DATETIME.match(value):
        raise ValueError("expected an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z")
    return value


Instant = Annotated[datetime, BeforeValidator(_iso_text)]
"""A point in time written as ISO 8601 (a date alone means its midnight, UTC without offset)."""
