"""A stored file as the domain sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class MediaDraft:
    """A file written to the store but not yet recorded: its content address and type."""

    sha256: str
    size: int
    mime_type: str
    filename: str | None
    written: bool
    """Whether this ingest wrote the bytes (False: the store had them already)."""


@dataclass(frozen=True, slots=True)
class StoredMedia:
    id: str
    tenant: str
    sha256: str
    size: int
    mime_type: str
    filename: str | None
    created_at: int

    @property
    def key(self) -> str:
        """Where the bytes are in the store."""
        return store_key(self.tenant, self.sha256)

    @classmethod
    def from_row(cls, row: Any) -> StoredMedia:
        return cls(
            id=row["id"],
            tenant=row["tenant_id"],
            sha256=row["sha256"],
            size=row["size"],
            mime_type=row["mime_type"],
            filename=row["filename"],
            created_at=row["created_at"],
        )

    def describe(self, filename: str | None = None) -> dict[str, Any]:
        """The ``media`` field of a message that uses this file (named ``filename`` there)."""
        return {
            "id": self.id,
            "mime_type": self.mime_type,
            "size": self.size,
            "sha256": self.sha256,
            "filename": filename if filename is not None else self.filename,
        }


def store_key(tenant: str, sha256: str) -> str:
    """The store key of a tenant's file: files are content-addressed within a tenant."""
    return f"{tenant}/{sha256}"
