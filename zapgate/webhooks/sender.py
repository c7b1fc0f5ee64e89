"""What delivers one event to one subscription: a sender per subscription kind.

The dispatcher and its workers (planning, lanes, retries, records) are the same for every kind;
only the last step differs. A webhook is a signed HTTP POST (:class:`HttpSender`); a sink
publishes to a broker (``zapgate.sinks``); a session integration calls Chatwoot or a bot
(``zapgate.integrations``). A sender never raises: every failure is an ``AttemptOutcome``.
"""

from __future__ import annotations

from typing import Protocol

from zapgate.clock import now_ms
from zapgate.webhooks import signing, ssrf
from zapgate.webhooks.client import WebhookClient
from zapgate.webhooks.http11 import Http11Client
from zapgate.webhooks.model import AttemptOutcome, Delivery, Webhook

USER_AGENT = "zapgate-webhooks/1"
REQUEST_ID_HEADER = "x-zapgate-request-id"
"""The id of the request that caused the delivered event, when one did (not signed: the
signed body says it too, as ``request_id``)."""


class Sender(Protocol):
    """Delivers events to the subscriptions of one kind."""

    async def start(self) -> None:
        """Open what it needs (pools); called once before the first ``send``."""

    async def close(self) -> None:
        """Close what it opened."""

    async def send(self, subscription: Webhook, delivery: Delivery, body: bytes) -> AttemptOutcome:
        """One attempt to deliver ``body`` (the event's envelope)."""
        ...


class HttpPool:
    """A sender's kept-alive HTTP connections (SSRF-checked): opened by ``start``, closed by
    ``close``; ``http`` in between."""

    def __init__(self, allowlist: ssrf.Allowlist) -> None:
        self._allowlist = allowlist
        self._http: Http11Client | None = None

    async def start(self) -> None:
        """Open the connection pool."""
        self._http = Http11Client(self._allowlist)

    async def close(self) -> None:
        """Close it."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> Http11Client:
        """The pool (``start`` first)."""
        assert self._http is not None, "start() the sender first"
        return self._http


class HttpSender:
    """Webhooks: the envelope POSTed, signed (Standard Webhooks), to the subscription's URL."""

    def __init__(self, client: WebhookClient) -> None:
        self.client = client

    async def start(self) -> None:
        """Open the HTTP pool."""
        await self.client.start()

    async def close(self) -> None:
        """Close the pool."""
        await self.client.close()

    async def send(self, subscription: Webhook, delivery: Delivery, body: bytes) -> AttemptOutcome:
        """POST the envelope with the subscription's headers and signature."""
        now = now_ms()
        headers = {
            **subscription.headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signing.headers(
                subscription.signing_secrets(now), delivery.event_id, now // 1000, body
            ),
        }
        if delivery.request_id is not None:
            headers[REQUEST_ID_HEADER] = delivery.request_id
        return await self.client.post(subscription.url, body, headers)
