"""The provider's callbacks for an SMS session: inbound SMS and statuses, signed.

The signature is the credential: nothing is read from a callback before it is checked against
the session's auth token and callback URL (and nothing stored when it fails). An unknown session
gets the same answer as a wrong signature (no telling which sessions exist). Failed checks count
against the address for that session only: the provider's addresses are shared by every tenant,
and one tenant's wrong token must not shut out the others' callbacks.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from zapgate.engines.sms import callbacks
from zapgate.engines.sms.callbacks import CallbackSink, Handled
from zapgate.engines.sms.config import SmsConfig, parse
from zapgate.engines.sms.signature import BadSignature
from zapgate.errors import AppError, Forbidden
from zapgate.limits.service import LimitService
from zapgate.sessions import calls
from zapgate.sessions.model import Session
from zapgate.sessions.service import SessionManager

log = logging.getLogger(__name__)
ENGINE = "sms"


class SmsCallbacks:
    """Checks and records the provider's callbacks on any node (the session may run on another)."""

    def __init__(self, sessions: SessionManager, limits: LimitService) -> None:
        self._sessions = sessions
        self._limits = limits

    async def receive(
        self,
        tenant: str,
        name: str,
        body: bytes,
        signature: str | None,
        query: str,
        address: str | None,
    ) -> Handled:
        """Check the signature (over the session's callback URL, with ``query`` if the provider
        called one), then record the inbound SMS or the status."""
        key = _failures_key(tenant, name, address)
        blocked = self._limits.address_blocked(key)
        if blocked is not None:
            raise blocked
        config = await self._config(tenant, name)
        try:
            if config is None:
                raise BadSignature("no such SMS session")
            url = config.callback_url(tenant, name)
            if url is not None and query:
                url = f"{url}?{query}"
            params = callbacks.checked(body, url, signature, config.auth_token)
        except BadSignature:
            self._limits.record_failure(key)
            raise Forbidden("X-Twilio-Signature is missing or wrong") from None
        sink: CallbackSink = self._sessions.callback_sink(tenant, name)
        handled = Handled()
        await callbacks.report(params, sink, handled)
        return handled

    async def _config(self, tenant: str, name: str) -> SmsConfig | None:
        """The session's SMS config; None when there is no such SMS session."""
        try:  # from the database: a token rotated through another node counts at once
            session = await self._sessions.get(tenant, name)
        except AppError:
            return None
        return _config_of(session)


def _config_of(session: Session) -> SmsConfig | None:
    """An SMS session's engine config (without zapgate's own keys)."""
    if session.engine != ENGINE:
        return None
    try:
        return parse(calls.engine_options(session.config))
    except ValidationError:
        return None


def _failures_key(tenant: str, name: str, address: str | None) -> str | None:
    return None if address is None else f"sms:{tenant}/{name}:{address}"
