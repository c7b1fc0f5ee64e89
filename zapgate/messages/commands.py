"""The send-a-text use case, shared by every route that sends."""

from __future__ import annotations

from zapgate.idempotency.service import Claim
from zapgate.messages.model import Message
from zapgate.phone import normalize_number
from zapgate.services import Services


async def send_text(
    services: Services,
    tenant: str,
    session: str,
    to: str,
    text: str,
    claim: Claim | None = None,
) -> Message:
    """Normalise ``to``, check the session exists, queue the text; raises AppError subclasses."""
    number = normalize_number(to, services.settings.default_country_code)
    await services.sessions.require(tenant, session)
    own = services.sessions.own_number(tenant, session)
    return await services.messages.accept(tenant, session, own, number, text, claim)
