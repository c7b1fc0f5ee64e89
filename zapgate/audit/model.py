"""An audit entry: who (actor) did what (action) to what (target), when, from where, and how it
ended (result)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from zapgate.clock import to_iso
from zapgate.ids import new_id, time_of

ID_PREFIX = "aud"
CLI_ACTOR = "cli"
"""The actor of changes made with the command line (the operator at the server's shell)."""
MAX_ACTOR = 200
MAX_ACTION = 300
MAX_TARGET = 300
MAX_ADDRESS = 64


class Result(StrEnum):
    OK = "ok"
    """Done (an HTTP answer below 400)."""
    REFUSED = "refused"
    """Refused by access control: a failed authentication (401) or a forbidden attempt (403)."""
    FAILED = "failed"
    """Attempted, not done: any other error (invalid input, not found, conflict, quota, ...)."""

    @classmethod
    def of_status(cls, status: int) -> Result:
        """The result of an HTTP answer with ``status``."""
        if status < 400:
            return cls.OK
        return cls.REFUSED if status in (401, 403) else cls.FAILED


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of a tenant's audit log; ``at`` is the time of its id (ids sort by time)."""

    id: str
    tenant: str
    at: int
    actor: str | None
    action: str
    target: str | None
    result: Result
    status: int | None = None
    """The HTTP status of the answer (None for the command line)."""
    address: str | None = None
    """The client's address (the peer's, or a trusted proxy's X-Forwarded-For)."""
    detail: dict[str, Any] | None = None
    """What else is known: the error code of a refusal, ``suppressed`` failed authentications
    not recorded before this one, ``replayed`` for an Idempotency-Key replay."""

    @classmethod
    def new(
        cls,
        tenant: str,
        actor: str | None,
        action: str,
        target: str | None,
        result: Result,
        status: int | None = None,
        address: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """A new entry, made now (values too long for their column are cut)."""
        entry_id = new_id(ID_PREFIX)
        return cls(
            id=entry_id,
            tenant=tenant,
            at=time_of(entry_id),
            actor=actor[:MAX_ACTOR] if actor is not None else None,
            action=action[:MAX_ACTION],
            target=target[:MAX_TARGET] if target is not None else None,
            result=result,
            status=status,
            address=address[:MAX_ADDRESS] if address is not None else None,
            detail=detail,
        )

    @classmethod
    def from_row(cls, row: Any) -> AuditEntry:
        """Build from an ``audit_log`` row mapping."""
        return cls(
            id=row["id"],
            tenant=row["tenant_id"],
            at=row["at"],
            actor=row["actor"],
            action=row["action"],
            target=row["target"],
            result=Result(row["result"]),
            status=row["status"],
            address=row["address"],
            detail=row["detail"],
        )

    def public(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "id": self.id,
            "timestamp": to_iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "result": self.result.value,
            "status": self.status,
            "address": self.address,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """A page of ``tenant``'s audit log, newest first, after ``before`` (an entry id)."""

    tenant: str
    limit: int
    actor: str | None = None
    action: str | None = None
    result: Result | None = None
    since_ms: int | None = None
    """Inclusive."""
    until_ms: int | None = None
    """Exclusive."""
    before: str | None = None
    unattributed: bool = True
    """Whether entries without an actor are shown: failed authentications of unknown callers,
    kept in the operator's tenant and shown only to the operator."""
