"""``GET /metrics``: the Prometheus text, for ``ZAPGATE_METRICS_TOKEN`` or the operator.

The figures span every tenant, so a tenant's own keys cannot read them: the metrics token, an
operator key, or a key of the default tenant (the operator's own) with the ``admin`` or
``metrics`` scope can.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from zapgate.auth.scopes import Scope
from zapgate.errors import Forbidden, Unauthorized
from zapgate.http.admission import client_address, presented_key
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.metrics import figures
from zapgate.services import DEFAULT_TENANT

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        },
        **responses(401, 403, 429, authenticated=False),
    },
    summary="Prometheus metrics (ZAPGATE_METRICS_TOKEN, an operator key, or a key of the "
    "default tenant with the admin or metrics scope)",
)
async def metrics(request: Request) -> Response:
    services = services_of(request)
    assert services.metrics is not None
    presented = presented_key(request.scope)
    address = client_address(request.scope)
    blocked = services.limits.address_blocked(address)
    if blocked is not None:
        raise blocked
    token = services.settings.metrics_token
    if not (token and presented and hmac.compare_digest(presented.encode(), token.encode())):
        try:
            principal = await services.auth.authenticate(presented)
        except Unauthorized:
            services.limits.record_failure(address)
            raise
        operator = Scope.OPERATOR in principal.scopes
        own = principal.tenant == DEFAULT_TENANT and bool(
            {Scope.ADMIN, Scope.METRICS} & principal.scopes
        )
        if not (operator or own):
            raise Forbidden("metrics span every tenant: the operator's keys read them")
    await figures.refresh(services.metrics, services.database)
    services.metrics.socketio_clients.set(services.realtime.client_count())
    services.metrics.stream_clients.set(services.limits.streams.total())
    return Response(services.metrics.text(), media_type=CONTENT_TYPE_LATEST)
