"""REST routes for sinks: like webhooks', publishing to a broker instead of POSTing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from zapgate.clock import from_datetime, to_iso
from zapgate.http.auth import Admin
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.idempotency import IdempotencyKey, idempotent
from zapgate.http.openapi import SINK_OPERATIONS, links, success
from zapgate.http.responses import Json
from zapgate.sinks.schemas import (
    CreateSink,
    ReplayAfterSeq,
    SinkDeliveryOut,
    SinkDeliveryPage,
    SinkOut,
    SinkReplay,
    UpdateSink,
)
from zapgate.sinks.service import NAMES
from zapgate.webhooks.api import deliveries_page
from zapgate.webhooks.model import Webhook
from zapgate.webhooks.schemas import Replayed

router = APIRouter(prefix="/api/v1/sinks", tags=["sinks"])
SinkId = Annotated[str, Path(max_length=40)]
DeliveryId = Annotated[str, Path(max_length=40)]
SINK_LINKS = links("sink_id", "$response.body#/id", SINK_OPERATIONS)


def public(sink: Webhook) -> dict[str, Any]:
    """The wire form: never the URL's credentials."""
    return {
        "id": sink.id,
        "type": sink.kind,
        "url": sink.url,
        **{name: sink.config.get(name) for name in NAMES[sink.kind]},
        "events": sink.event_types,
        "sessions": sink.sessions,
        "active": sink.active,
        "disabled_reason": sink.disabled_reason,
        "consecutive_failures": sink.consecutive_failures,
        "created_at": to_iso(sink.created_at),
        "updated_at": to_iso(sink.updated_at),
    }


def _created(created: tuple[Webhook, str]) -> tuple[int, dict[str, Any]]:
    return 201, public(created[0])


@router.post(
    "",
    status_code=201,
    response_model=SinkOut,
    responses={
        **responses(409, 413, 503),
        **success(201, "The sink (its URL without credentials)", links=SINK_LINKS),
    },
    summary="Publish events to a broker: RabbitMQ, NATS JetStream or Redis Streams",
)
async def create_sink(
    request: Request, body: CreateSink, caller: Admin, idempotency_key: IdempotencyKey = None
) -> Json:
    service = services_of(request).sinks
    return await idempotent(
        request,
        caller.tenant,
        idempotency_key,
        _created,
        lambda claim: service.create(caller.tenant, body.model_dump(), claim),
    )


@router.get("", response_model=list[SinkOut], responses=responses(), summary="Sinks")
async def list_sinks(request: Request, caller: Admin) -> Json:
    found = await services_of(request).sinks.list_webhooks(caller.tenant)
    return Json([public(sink) for sink in found])


@router.get("/{sink_id}", response_model=SinkOut, responses=responses(404), summary="One sink")
async def get_sink(request: Request, sink_id: SinkId, caller: Admin) -> Json:
    return Json(public(await services_of(request).sinks.get(caller.tenant, sink_id)))


@router.patch(
    "/{sink_id}",
    response_model=SinkOut,
    responses=responses(404, 413, 503),
    summary="Change a sink (active: true turns a disabled one back on)",
)
async def update_sink(request: Request, sink_id: SinkId, body: UpdateSink, caller: Admin) -> Json:
    changes = body.model_dump(exclude_unset=True)
    return Json(public(await services_of(request).sinks.update(caller.tenant, sink_id, changes)))


@router.delete("/{sink_id}", status_code=204, responses=responses(404, 503), summary="Remove")
async def delete_sink(request: Request, sink_id: SinkId, caller: Admin) -> Response:
    await services_of(request).sinks.delete(caller.tenant, sink_id)
    return Response(status_code=204)


@router.get(
    "/{sink_id}/deliveries",
    response_model=SinkDeliveryPage,
    responses=responses(404),
    summary="A sink's deliveries and every attempt, newest first",
)
async def list_sink_deliveries(
    request: Request,
    sink_id: SinkId,
    caller: Admin,
    status: Literal["pending", "succeeded", "failed"] | None = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Json:
    page = await services_of(request).sinks.deliveries(
        caller.tenant, sink_id, limit, cursor, status
    )
    return deliveries_page(page, limit)


@router.post(
    "/{sink_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=SinkDeliveryOut,
    responses=responses(404, 503),
    summary="Publish a delivery again now",
)
async def retry_sink_delivery(
    request: Request, sink_id: SinkId, delivery_id: DeliveryId, caller: Admin
) -> Json:
    delivery = await services_of(request).sinks.retry(caller.tenant, sink_id, delivery_id)
    return Json(delivery.public(None, "sink_id"), status_code=202)


@router.post(
    "/{sink_id}/replay",
    status_code=202,
    response_model=Replayed,
    responses=responses(404, 413, 429, 503),
    summary="Publish again every matching event after a seq or since a time (10000 at most)",
)
async def replay_sink(request: Request, sink_id: SinkId, body: SinkReplay, caller: Admin) -> Json:
    sinks = services_of(request).sinks
    if isinstance(body, ReplayAfterSeq):
        count = await sinks.replay(caller.tenant, sink_id, 0, after_seq=body.after_seq)
    else:
        count = await sinks.replay(caller.tenant, sink_id, from_datetime(body.since))
    return Json({"replayed": count}, status_code=202)
