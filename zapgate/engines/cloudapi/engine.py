"""The Cloud API engine: a session is one phone number of a WhatsApp Business Account.

There is nothing to pair: the session is WORKING once a GET of its phone number succeeds, and
that GET is repeated every ``health_seconds`` (a sign of life; a revoked token shows as FAILED).
Sends go through :class:`SendLimiter`; Meta's errors are sorted by code (``errors.py``):
transient ones are retried by the sender, an expired token fails the session (its messages wait
in the outbox), and the rest fail the message with Meta's reason. Received messages and
statuses arrive as callbacks (``callbacks.py``), on the route that checks their signature.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from typing import Any

from zapgate.clock import Clock
from zapgate.engines.account import AccountSession
from zapgate.engines.base import (
    MESSAGE_TYPES,
    Capability,
    EngineError,
    EngineNotReady,
    EngineSink,
    Media,
    OutboundMessage,
    PermanentEngineError,
    SendReceipt,
    SessionConfig,
    SessionStatus,
    TransientEngineError,
    UnsupportedByEngine,
    UnsupportedMessageType,
)
from zapgate.engines.cloudapi import callbacks, errors
from zapgate.engines.cloudapi.config import CloudApiConfig, parse
from zapgate.engines.cloudapi.errors import GraphError
from zapgate.engines.cloudapi.graph import GraphClient
from zapgate.engines.cloudapi.limiter import SendLimiter
from zapgate.engines.cloudapi.payloads import MEDIA_KINDS, message_json
from zapgate.webhooks import ssrf
from zapgate.webhooks.http11 import Http11Client

UPLOADS_KEPT = 1000
UPLOAD_TTL_SECONDS = 29 * 86_400
"""A file uploaded to Meta is sent again by its media id (Meta keeps one 30 days)."""


class CloudApiEngine(AccountSession):
    """One phone number on Meta's Cloud API."""

    name = "cloudapi"
    capabilities = frozenset(
        {
            *(Capability(kind) for kind in MESSAGE_TYPES),
            Capability.TEMPLATE,
            Capability.INTERACTIVE,
            Capability.CHATS,
        }
    )

    def __init__(self, allowlist: ssrf.Allowlist, clock: Clock, max_media_bytes: int) -> None:
        super().__init__()
        self._allowlist = allowlist
        self._clock = clock
        self._max_bytes = max_media_bytes
        self._config: CloudApiConfig | None = None
        self._graph: GraphClient | None = None
        self.limiter: SendLimiter | None = None
        self._uploads: OrderedDict[str, tuple[str, float]] = OrderedDict()

    # lifecycle -------------------------------------------------------------------------------

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        config = parse(session.options)
        self._config = config
        self._sink = sink
        self._http = Http11Client(self._allowlist)
        self._graph = GraphClient(config, self._http, self._max_bytes)
        self.limiter = SendLimiter(
            config.rate_per_second, config.pair_rate_per_minute, config.pair_burst, self._clock
        )
        await sink.status(SessionStatus.STARTING)
        self._task = asyncio.create_task(self._watch(), name=f"cloudapi:{session.name}")

    async def request_pairing_code(self, phone: str) -> str:
        raise UnsupportedByEngine("the cloudapi engine has nothing to pair")

    async def _watch(self) -> None:
        """WORKING while the phone number answers (``AccountSession``); the token or the
        number refused: FAILED."""
        graph, config = self._graph, self._config
        assert graph is not None
        assert config is not None

        async def me() -> dict[str, Any]:
            return _account(await graph.phone(), config)

        await self._watch_account(me, GraphError, config.health_seconds)

    # sending ---------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendReceipt:
        graph, limiter = self._graph, self.limiter
        if not self._ready or graph is None or limiter is None:
            raise EngineNotReady("the session is not WORKING")
        if message.kind not in self.capabilities:
            raise _unsupported(message.kind)
        media_id = None
        if message.kind in MEDIA_KINDS and message.media is not None:
            media_id = await self._uploaded(graph, message.media)
        payload = message_json(message, media_id)
        to = str(payload["to"])
        await limiter.acquire(to)
        if not self._ready:
            raise EngineNotReady("the session is not WORKING")
        try:
            wamid = await graph.send(payload)
        except GraphError as error:
            raise self._engine_error(error, to) from None
        return SendReceipt(wamid)

    async def _uploaded(self, graph: GraphClient, media: Media) -> str:
        """The media id of ``media`` at Meta: uploaded now, or earlier (within its life)."""
        key = f"{hashlib.sha256(media.data).hexdigest()}:{media.mime_type}:{media.filename}"
        now = self._clock.monotonic()
        kept = self._uploads.get(key)
        if kept is not None and kept[1] > now:
            self._uploads.move_to_end(key)
            return kept[0]
        try:
            media_id = await graph.upload(media)
        except GraphError as error:
            raise self._engine_error(error, None) from None
        self._uploads[key] = (media_id, now + UPLOAD_TTL_SECONDS)
        while len(self._uploads) > UPLOADS_KEPT:
            self._uploads.popitem(last=False)
        return media_id

    def _engine_error(self, error: GraphError, to: str | None) -> EngineError:
        """Meta's error as the sender should take it (and what the engine learns from it)."""
        if error.code == errors.THROUGHPUT and self.limiter is not None:
            self.limiter.slow_down()
        elif error.code == errors.PAIR_RATE and self.limiter is not None and to:
            self.limiter.cool_down(to)
        if error.auth:  # the session cannot send at all: it fails, its messages wait
            self._fail_soon(str(error))
            return EngineNotReady(str(error))
        if error.transient:
            if error.code < 0:  # no answer from Meta: look at the connection now
                self._look.set()
            return TransientEngineError(str(error))
        return PermanentEngineError(str(error))

    async def mark_message_read(self, engine_message_id: str) -> None:
        """Blue ticks up to a received message (Meta marks the ones before it read too)."""
        graph = self._graph
        if not self._ready or graph is None:
            raise EngineNotReady("the session is not WORKING")
        try:
            await graph.mark_read(engine_message_id)
        except GraphError as error:
            raise self._engine_error(error, None) from None

    # callbacks (on the route, in tests) -------------------------------------------------------

    async def handle_callback(self, body: bytes, signature: str | None) -> callbacks.Handled:
        """A callback for this session, checked and reported to the engine's sink."""
        config, graph, sink = self._config, self._graph, self._sink
        if config is None or graph is None or sink is None:
            raise EngineNotReady("the session is not running")
        callbacks.verify(body, signature, config.app_secret)
        handled = callbacks.Handled()
        for value in callbacks.parse(body):
            await callbacks.report(value, sink, graph.download, handled)
        return handled


def _account(phone: dict[str, Any], config: CloudApiConfig) -> dict[str, Any]:
    """The session's ``me``: the number, its verified name, quality and tier."""
    shown = str(phone.get("display_phone_number", ""))
    throughput = phone.get("throughput")
    return {
        "id": "".join(ch for ch in shown if ch.isdigit()),
        "name": phone.get("verified_name"),
        "display_phone_number": shown,
        "phone_number_id": config.phone_number_id,
        "waba_id": config.waba_id,
        "quality_rating": phone.get("quality_rating"),
        "throughput": throughput.get("level") if isinstance(throughput, dict) else None,
    }


def _unsupported(kind: str) -> EngineError:
    return UnsupportedMessageType(f"the cloudapi engine cannot send {kind!r} messages")
