"""Reading an API's JSON defensively: a field of the wrong type reads as absent."""

from __future__ import annotations

from typing import Any


def number(value: Any) -> float | None:
    """A JSON number (never a bool), as a float; None otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def items(value: Any) -> list[Any]:
    """A JSON array; empty otherwise."""
    return value if isinstance(value, list) else []


def text(value: Any) -> str | None:
    """A non-empty JSON string; None otherwise."""
    return value if isinstance(value, str) and value else None
