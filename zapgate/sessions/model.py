"""The session as the domain sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zapgate.clock import to_iso
from zapgate.engines.base import SessionStatus
from zapgate.sessions import sealing


@dataclass(frozen=True, slots=True)
class NewSession:
    """What a new session is made of (it starts stopped; ``desired`` says whether to run it)."""

    tenant: str
    name: str
    engine: str
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    desired: str = "running"


@dataclass(frozen=True, slots=True)
class Session:
    tenant: str
    name: str
    engine: str
    config: dict[str, Any]
    metadata: dict[str, Any]
    status: SessionStatus
    status_reason: str | None
    desired: str
    me: dict[str, Any] | None
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: Any) -> Session:
        """Build from a ``sessions`` row mapping."""
        return cls(
            tenant=row["tenant_id"],
            name=row["name"],
            engine=row["engine"],
            config=sealing.unseal(row["config"] or {}, f"{row['tenant_id']}/{row['name']}"),
            metadata=row["metadata"] or {},
            status=SessionStatus(row["status"]),
            status_reason=row["status_reason"],
            desired=row["desired"],
            me=row["me"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def public(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "name": self.name,
            "engine": self.engine,
            "status": self.status.value,
            "reason": self.status_reason,
            "me": self.me,
            "config": self.config,
            "metadata": self.metadata,
            "created_at": to_iso(self.created_at),
            "updated_at": to_iso(self.updated_at),
        }
