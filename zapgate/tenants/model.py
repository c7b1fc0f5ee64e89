"""The tenant as the domain sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    last_seq: int
    created_at: int

    @classmethod
    def from_row(cls, row: Any) -> Tenant:
        """Build from a ``tenants`` row mapping."""
        return cls(
            id=row["id"], name=row["name"], last_seq=row["last_seq"], created_at=row["created_at"]
        )
