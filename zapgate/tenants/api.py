"""REST routes for tenants and their keys: the operator's."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from zapgate.auth.api import KeyId, issue, public
from zapgate.auth.schemas import CreateKey, IssuedKeyOut, KeyOut
from zapgate.clock import to_iso
from zapgate.errors import NotConfirmed
from zapgate.http.auth import Operator
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.openapi import success
from zapgate.http.responses import Json
from zapgate.names import TENANT_ID
from zapgate.tenants.model import Tenant
from zapgate.tenants.schemas import CreateTenant, TenantOut, TenantPage, UpdateTenant

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])
TenantId = Annotated[str, Path(pattern=TENANT_ID, description="the tenant's id")]


@router.post(
    "",
    status_code=201,
    response_model=TenantOut,
    responses={**responses(409), **success(201, "The new tenant")},
    summary="Create a tenant (operator)",
)
async def create_tenant(request: Request, body: CreateTenant, caller: Operator) -> Json:
    service = services_of(request).tenants
    limits = body.limits.given() if body.limits is not None else None
    created = await service.create(body.id, body.name, limits)
    return Json(await _shown(request, created), status_code=201)


@router.get("", response_model=TenantPage, responses=responses(), summary="Tenants (operator)")
async def list_tenants(
    request: Request,
    caller: Operator,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=TENANT_ID, description="the next_cursor of the previous page"),
    ] = None,
) -> Json:
    page = await services_of(request).tenants.page(cursor, limit)
    next_cursor = page[-1].id if len(page) == limit else None
    return Json({"data": [await _shown(request, t) for t in page], "next_cursor": next_cursor})


@router.get(
    "/{tenant}", response_model=TenantOut, responses=responses(404), summary="A tenant (operator)"
)
async def get_tenant(request: Request, tenant: TenantId, caller: Operator) -> Json:
    return Json(await _shown(request, await services_of(request).tenants.get(tenant)))


@router.patch(
    "/{tenant}",
    response_model=TenantOut,
    responses=responses(404),
    summary="Rename a tenant or set its limits (operator)",
)
async def update_tenant(
    request: Request, tenant: TenantId, body: UpdateTenant, caller: Operator
) -> Json:
    limits = body.limits.given() if body.limits is not None else None
    changed = await services_of(request).tenants.update(tenant, body.name, limits)
    return Json(await _shown(request, changed))


@router.post(
    "/{tenant}/suspend",
    response_model=TenantOut,
    responses=responses(404, 409),
    summary="Suspend a tenant: its keys are refused and its sessions stop, at once (operator)",
)
async def suspend_tenant(request: Request, tenant: TenantId, caller: Operator) -> Json:
    return Json(await _shown(request, await services_of(request).tenants.suspend(tenant)))


@router.post(
    "/{tenant}/resume",
    response_model=TenantOut,
    responses=responses(404, 409),
    summary="Resume a suspended tenant: its keys work and its sessions start again (operator)",
)
async def resume_tenant(request: Request, tenant: TenantId, caller: Operator) -> Json:
    return Json(await _shown(request, await services_of(request).tenants.resume(tenant)))


@router.delete(
    "/{tenant}",
    status_code=202,
    response_model=TenantOut,
    responses={
        **responses(404, 409),
        **success(202, "Refused from now on; its data is being deleted (then it is a 404)"),
        409: {
            **responses(409)[409],
            "description": "`not_confirmed` (confirm is not the tenant's id), or the operator's "
            "own tenant",
        },
    },
    summary="Delete a tenant with all its data (operator; confirm with ?confirm=<its id>)",
)
async def delete_tenant(
    request: Request,
    tenant: TenantId,
    caller: Operator,
    confirm: Annotated[
        str, Query(max_length=64, description="the tenant's id again: deletion cannot be undone")
    ],
) -> Json:
    if confirm != tenant:
        raise NotConfirmed("confirm must repeat the tenant's id: its data cannot be recovered")
    deleting = await services_of(request).tenants.delete(tenant)
    return Json(await _shown(request, deleting), status_code=202)


@router.post(
    "/{tenant}/keys",
    status_code=201,
    response_model=IssuedKeyOut,
    responses={**responses(404), **success(201, "The key, with its plaintext (shown only now)")},
    summary="Issue a key of a tenant (operator; the plaintext is shown only now)",
)
async def create_tenant_key(
    request: Request, tenant: TenantId, body: CreateKey, caller: Operator
) -> Json:
    return await issue(request, tenant, body)


@router.get(
    "/{tenant}/keys",
    response_model=list[KeyOut],
    responses=responses(404),
    summary="A tenant's keys (operator)",
)
async def list_tenant_keys(request: Request, tenant: TenantId, caller: Operator) -> Json:
    services = services_of(request)
    await services.tenants.get(tenant)
    return Json([public(record) for record in await services.auth.list_keys(tenant)])


@router.delete(
    "/{tenant}/keys/{key_id}",
    status_code=204,
    responses={
        **responses(404, 409),
        204: {"description": "Revoked: refused from its next request, on every node"},
    },
    summary="Revoke a tenant's key (operator)",
)
async def revoke_tenant_key(
    request: Request, tenant: TenantId, key_id: KeyId, caller: Operator
) -> Response:
    await services_of(request).auth.revoke_key(tenant, key_id)
    return Response(status_code=204)


async def _shown(request: Request, tenant: Tenant) -> dict[str, Any]:
    described = await services_of(request).tenants.describe(tenant)
    return {
        "id": tenant.id,
        "name": tenant.name,
        "status": tenant.status.value,
        "created_at": to_iso(tenant.created_at),
        "suspended_at": to_iso(tenant.suspended_at) if tenant.suspended_at is not None else None,
        "sessions": described["sessions"],
        "limits": asdict(described["limits"]),
        "overrides": described["overrides"],
    }
