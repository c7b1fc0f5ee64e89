"""REST routes for API keys: a tenant's admin issues, lists and revokes its tenant's keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from zapgate.auth.schemas import CreateKey, IssuedKeyOut, KeyOut
from zapgate.auth.service import KeyRequest
from zapgate.clock import from_datetime, to_iso
from zapgate.http.auth import Admin
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.openapi import success
from zapgate.http.responses import Json

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])
KeyId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^key_[A-Za-z0-9_]{1,36}$")]


@router.post(
    "",
    status_code=201,
    response_model=IssuedKeyOut,
    responses={**responses(), **success(201, "The key, with its plaintext (shown only now)")},
    summary="Issue a key (the plaintext is shown only now)",
)
async def create_key(request: Request, body: CreateKey, caller: Admin) -> Json:
    return await issue(request, caller.tenant, body)


@router.get("", response_model=list[KeyOut], responses=responses(), summary="This tenant's keys")
async def list_keys(request: Request, caller: Admin) -> Json:
    return Json(
        [public(record) for record in await services_of(request).auth.list_keys(caller.tenant)]
    )


@router.delete(
    "/{key_id}",
    status_code=204,
    responses={
        **responses(404, 409),
        204: {"description": "Revoked: refused from its next request"},
    },
    summary="Revoke a key",
)
async def revoke_key(request: Request, key_id: KeyId, caller: Admin) -> Response:
    await services_of(request).auth.revoke_key(caller.tenant, key_id, caller.operator)
    return Response(status_code=204)


async def issue(request: Request, tenant: str, body: CreateKey) -> Json:
    """Issue the key ``body`` asks for to ``tenant``: 201 with its plaintext."""
    expires_at = from_datetime(body.expires_at) if body.expires_at is not None else None
    wanted = KeyRequest(
        body.name,
        frozenset(body.scopes),
        frozenset(body.sessions) if body.sessions is not None else None,
        expires_at,
    )
    plaintext, record = await services_of(request).auth.issue_key(tenant, wanted)
    return Json({**public(record), "key": plaintext}, status_code=201)


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A stored key record as the API shows it (ISO times, scopes as a list)."""

    def when(ms: int | None) -> str | None:
        return to_iso(ms) if ms is not None else None

    return {
        "id": record["id"],
        "name": record["name"],
        "scopes": record["scopes"].split(),
        "sessions": record["sessions"],
        "expires_at": when(record["expires_at"]),
        "created_at": to_iso(record["created_at"]),
        "last_used_at": when(record["last_used_at"]),
        "revoked_at": when(record["revoked_at"]),
    }
