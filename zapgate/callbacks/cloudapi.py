"""Meta's callbacks for a Cloud API session: the verify handshake, and signed deliveries.

The signature is the credential: nothing is read from a callback before it is checked against
the session's app secret (and nothing stored when it fails). An app has one callback URL for all
its numbers, so a change about another number goes to the tenant's session of that number
(signed by the same app), or is left alone. Failed checks count against the address for that
session only: Meta's addresses are shared by every tenant, and one tenant's wrong secret must
not shut out the others' callbacks.
"""

from __future__ import annotations

import hmac
import logging

from pydantic import ValidationError

from zapgate.engines.cloudapi import callbacks
from zapgate.engines.cloudapi.callbacks import BadCallback, BadSignature, CallbackSink, Handled
from zapgate.engines.cloudapi.config import CloudApiConfig, parse
from zapgate.engines.cloudapi.graph import GraphClient
from zapgate.errors import AppError, Forbidden, InvalidInput, Unauthorized
from zapgate.limits.service import LimitService
from zapgate.sessions import calls
from zapgate.sessions.model import Session
from zapgate.sessions.service import SessionManager
from zapgate.webhooks import ssrf
from zapgate.webhooks.http11 import Http11Client

log = logging.getLogger(__name__)
ENGINE = "cloudapi"


class CloudApiCallbacks:
    """Checks and records Meta's callbacks on any node (the session may run on another)."""

    def __init__(
        self,
        sessions: SessionManager,
        limits: LimitService,
        allowlist: ssrf.Allowlist,
        max_media_bytes: int,
    ) -> None:
        self._sessions = sessions
        self._limits = limits
        self._http = Http11Client(allowlist)
        self._max_bytes = max_media_bytes

    async def close(self) -> None:
        await self._http.close()

    async def handshake(
        self, tenant: str, name: str, mode: str, token: str, challenge: str, address: str | None
    ) -> str:
        """The challenge, when ``token`` is the session's verify token (Forbidden if not)."""
        key = _failures_key(tenant, name, address)
        self._refuse_if_blocked(key)
        config = await self._config(tenant, name)
        given, expected = token.encode(), (config.verify_token if config else "").encode()
        if mode != "subscribe" or config is None or not hmac.compare_digest(given, expected):
            self._limits.record_failure(key)
            raise Forbidden("hub.verify_token does not match the session's verify_token")
        return challenge

    async def receive(
        self, tenant: str, name: str, body: bytes, signature: str | None, address: str | None
    ) -> Handled:
        """Check the signature, then record every change of the callback."""
        key = _failures_key(tenant, name, address)
        self._refuse_if_blocked(key)
        config = await self._config(tenant, name)
        try:
            if config is None:
                raise BadSignature("no such Cloud API session")
            callbacks.verify(body, signature, config.app_secret)
        except BadSignature:
            self._limits.record_failure(key)
            raise Unauthorized("X-Hub-Signature-256 is missing or wrong") from None
        try:
            values = callbacks.parse(body)
        except BadCallback as bad:
            raise InvalidInput(str(bad)) from None
        handled = Handled()
        for value in values:
            number = callbacks.phone_number_id(value)
            target, target_config = name, config
            if number is not None and number != config.phone_number_id:
                found = await self._sibling(tenant, number, config.app_secret)
                if found is None:
                    handled.other_numbers.add(number)
                    continue
                target, target_config = found
            sink: CallbackSink = self._sessions.callback_sink(tenant, target)
            graph = GraphClient(target_config, self._http, self._max_bytes)
            await callbacks.report(value, sink, graph.download, handled)
        if handled.other_numbers:
            log.info(
                "callback for %s/%s named numbers of no session: %s",
                tenant,
                name,
                ", ".join(sorted(handled.other_numbers)),
            )
        return handled

    def _refuse_if_blocked(self, key: str | None) -> None:
        blocked = self._limits.address_blocked(key)
        if blocked is not None:
            raise blocked

    async def _config(self, tenant: str, name: str) -> CloudApiConfig | None:
        """The session's Cloud API config; None when there is no such Cloud API session."""
        try:  # from the database: a secret rotated through another node counts at once
            session = await self._sessions.get(tenant, name)
        except AppError:
            return None
        return _config_of(session)

    async def _sibling(
        self, tenant: str, phone_number_id: str, app_secret: str
    ) -> tuple[str, CloudApiConfig] | None:
        """The tenant's Cloud API session of ``phone_number_id`` on the same app, if any."""
        for session in await self._sessions.list_sessions(tenant):
            config = _config_of(session)
            if config is None:
                continue
            if config.phone_number_id == phone_number_id and hmac.compare_digest(
                config.app_secret.encode(), app_secret.encode()
            ):
                return session.name, config
        return None


def _config_of(session: Session) -> CloudApiConfig | None:
    """A Cloud API session's engine config (without zapgate's own keys, such as ``calls``)."""
    if session.engine != ENGINE:
        return None
    try:
        return parse(calls.engine_options(session.config))
    except ValidationError:
        return None


def _failures_key(tenant: str, name: str, address: str | None) -> str | None:
    return None if address is None else f"cloudapi:{tenant}/{name}:{address}"
