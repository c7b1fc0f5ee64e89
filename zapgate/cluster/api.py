"""REST route for the cluster's nodes."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from zapgate.clock import to_iso
from zapgate.http.auth import Admin
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.responses import Json

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


class NodeOut(BaseModel):
    """A live node."""

    name: str = Field(description="ZAPGATE_NODE_NAME (default: host name and process id)")
    started_at: datetime
    last_seen: datetime = Field(description="its last heartbeat (every third of the lease TTL)")
    sessions: int = Field(description="how many sessions run on it")


class NodePage(BaseModel):
    """The nodes seen within the lease TTL, by name."""

    data: list[NodeOut]


@router.get("", response_model=NodePage, responses=responses(), summary="Live nodes")
async def list_nodes(request: Request, caller: Admin) -> Json:
    nodes = await services_of(request).nodes.alive()
    return Json(
        {
            "data": [
                {
                    "name": node.name,
                    "started_at": to_iso(node.started_at),
                    "last_seen": to_iso(node.last_seen),
                    "sessions": node.sessions,
                }
                for node in nodes
            ]
        }
    )
