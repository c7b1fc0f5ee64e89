"""The tenant as the domain sees it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    """Every key refused, sessions stopped; resumed as it was."""
    DELETING = "deleting"
    """Refused like a suspended tenant while its data is deleted; then it is gone."""


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    last_seq: int
    created_at: int
    status: TenantStatus = TenantStatus.ACTIVE
    suspended_at: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> Tenant:
        """Build from a ``tenants`` row mapping."""
        return cls(
            id=row["id"],
            name=row["name"],
            last_seq=row["last_seq"],
            created_at=row["created_at"],
            status=TenantStatus(row["status"]),
            suspended_at=row["suspended_at"],
        )
