"""REST routes for webhooks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from zapgate.clock import from_datetime
from zapgate.http.auth import Admin
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.idempotency import IdempotencyKey, idempotent
from zapgate.http.openapi import WEBHOOK_OPERATIONS, links, success
from zapgate.http.responses import Json
from zapgate.webhooks.model import Webhook
from zapgate.webhooks.schemas import (
    CreateWebhook,
    DeliveryOut,
    DeliveryPage,
    Replay,
    Replayed,
    RotateSecret,
    UpdateWebhook,
    WebhookOut,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
WebhookId = Annotated[str, Path(max_length=40)]
DeliveryId = Annotated[str, Path(max_length=40)]
WEBHOOK_LINKS = links("webhook_id", "$response.body#/id", WEBHOOK_OPERATIONS)


def deliveries_page(page: list[dict[str, Any]], limit: int) -> Json:
    """A page of deliveries (webhooks', sinks', integrations'), with the cursor of the next."""
    next_cursor = page[-1]["id"] if len(page) == limit else None
    return Json({"data": page, "next_cursor": next_cursor})


def _with_secret(created: tuple[Webhook, str]) -> tuple[int, dict[str, Any]]:
    webhook, secret = created
    return 201, {**webhook.public(), "secret": secret}


def _without_secret(created: tuple[Webhook, str]) -> tuple[int, dict[str, Any]]:
    """The answer kept for an Idempotency-Key replay: never the secret (rotate it if lost)."""
    webhook, _secret = created
    return 201, {**webhook.public(), "secret": None}


@router.post(
    "",
    status_code=201,
    response_model=WebhookOut,
    responses={
        **responses(409, 413, 503),
        **success(201, "The subscription, with its secret", links=WEBHOOK_LINKS),
    },
    summary="Subscribe a URL to events (the secret is shown only now)",
)
async def create_webhook(
    request: Request, body: CreateWebhook, caller: Admin, idempotency_key: IdempotencyKey = None
) -> Json:
    service = services_of(request).webhooks
    return await idempotent(
        request,
        caller.tenant,
        idempotency_key,
        _with_secret,
        lambda claim: service.create(caller.tenant, body.model_dump(), claim),
        stored=_without_secret,
    )


@router.get("", response_model=list[WebhookOut], responses=responses(), summary="Subscriptions")
async def list_webhooks(request: Request, caller: Admin) -> Json:
    found = await services_of(request).webhooks.list_webhooks(caller.tenant)
    return Json([webhook.public() for webhook in found])


@router.get("/{webhook_id}", response_model=WebhookOut, responses=responses(404), summary="One")
async def get_webhook(request: Request, webhook_id: WebhookId, caller: Admin) -> Json:
    return Json((await services_of(request).webhooks.get(caller.tenant, webhook_id)).public())


@router.patch(
    "/{webhook_id}",
    response_model=WebhookOut,
    responses=responses(404, 413, 503),
    summary="Change a subscription (active: true turns a disabled one back on)",
)
async def update_webhook(
    request: Request, webhook_id: WebhookId, body: UpdateWebhook, caller: Admin
) -> Json:
    changes = body.model_dump(exclude_unset=True)
    updated = await services_of(request).webhooks.update(caller.tenant, webhook_id, changes)
    return Json(updated.public())


@router.delete(
    "/{webhook_id}", status_code=204, responses=responses(404, 503), summary="Unsubscribe"
)
async def delete_webhook(request: Request, webhook_id: WebhookId, caller: Admin) -> Response:
    await services_of(request).webhooks.delete(caller.tenant, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookOut,
    responses=responses(404, 413, 503),
    summary="A new secret; the old one keeps signing alongside it during the grace period",
)
async def rotate_secret(
    request: Request, webhook_id: WebhookId, caller: Admin, body: RotateSecret | None = None
) -> Json:
    services = services_of(request)
    grace = body.grace_seconds if body and body.grace_seconds is not None else None
    webhook, secret = await services.webhooks.rotate_secret(
        caller.tenant,
        webhook_id,
        services.settings.webhook_secret_grace_seconds if grace is None else grace,
    )
    return Json({**webhook.public(), "secret": secret})


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    responses=responses(404),
    summary="Deliveries and every attempt, newest first",
)
async def list_deliveries(
    request: Request,
    webhook_id: WebhookId,
    caller: Admin,
    status: Literal["pending", "succeeded", "failed"] | None = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Json:
    page = await services_of(request).webhooks.deliveries(
        caller.tenant, webhook_id, limit, cursor, status
    )
    return deliveries_page(page, limit)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryOut,
    responses=responses(404, 503),
    summary="Send a delivery again now",
)
async def retry_delivery(
    request: Request,
    webhook_id: WebhookId,
    delivery_id: DeliveryId,
    caller: Admin,
) -> Json:
    delivery = await services_of(request).webhooks.retry(caller.tenant, webhook_id, delivery_id)
    return Json(delivery.public(), status_code=202)


@router.post(
    "/{webhook_id}/replay",
    status_code=202,
    response_model=Replayed,
    responses=responses(404, 413, 429, 503),
    summary="Deliver again every matching event since a time (at most 10000 pending)",
)
async def replay(request: Request, webhook_id: WebhookId, body: Replay, caller: Admin) -> Json:
    count = await services_of(request).webhooks.replay(
        caller.tenant, webhook_id, from_datetime(body.since)
    )
    return Json({"replayed": count}, status_code=202)
