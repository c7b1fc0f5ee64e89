"""The contract suite's driver for the SMS engine: the engine against the fake Twilio API,
whose signed callbacks (statuses after each send, inbound SMS) are handed to the engine's own
callback handler."""

from __future__ import annotations

from typing import Any

from tests.contract.drivers import Delivered
from tests.support.fake_twilio import FakeTwilio
from zapgate.engines.base import AckStatus, Engine, InboundMessage, OutboundMessage
from zapgate.engines.sms.engine import SmsEngine
from zapgate.webhooks.ssrf import Allowlist

PUBLIC_URL = "https://zapgate.example.com"
"""Where the provider would call: the callbacks are handed over in the process instead."""


class SmsDriver:
    """Twilio's side is the fake: queued, sent and delivered after each send; inbound SMS."""

    name = "sms"
    inbound_filenames: frozenset[str] | None = frozenset()
    keeps_vcards = False
    acks = (AckStatus.DELIVERED,)
    """``sent`` then ``delivered``: SMS has no read receipts."""
    links_replies = False

    def __init__(self) -> None:
        self.fake = FakeTwilio()
        self.config: dict[str, Any] = {}
        self._engine: SmsEngine | None = None

    def available(self) -> str | None:
        return None

    def sender_of(self, peer: str) -> str:
        return f"+{peer}@sms"

    async def setup(self) -> None:
        self.fake = FakeTwilio()
        await self.fake.start()
        self.config = {
            "account_sid": self.fake.account_sid,
            "auth_token": self.fake.auth_token,
            "from": self.fake.number,
            "api_base": self.fake.url,
            "public_url": PUBLIC_URL,
            "health_seconds": 1,
        }
        self.fake.callback = self._callback
        self.fake.inbound_url = f"{PUBLIC_URL}/api/v1/sms/default/contract/webhook"

    async def teardown(self) -> None:
        await self.fake.stop()
        assert self.fake.problems == [], "the engine sent what Twilio would refuse"

    def create(self) -> Engine:
        self._engine = SmsEngine(Allowlist.parse("127.0.0.1"))
        return self._engine

    async def _callback(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        if self._engine is None:
            return 503
        signature = {k.lower(): v for k, v in headers.items()}.get("x-twilio-signature")
        await self._engine.handle_callback(body, signature)
        return 200

    async def scan(self, engine: Engine) -> None:
        """Nothing to scan."""

    async def deliver(self, engine: Engine, sender: str, text: str) -> None:
        assert await self.fake.deliver(f"+{sender}", text) == 200

    async def deliver_message(self, engine: Engine, message: InboundMessage) -> None:
        assert message.kind == "text", "SMS carries texts only"
        await self.deliver(engine, message.sender, message.text or "")

    async def disconnect(self, engine: Engine) -> None:
        """Twilio answers 500 to the next two calls (the engine's looks), then is back."""
        self.fake.outage_left = 2

    async def delivered(
        self, engine: Engine, message: OutboundMessage, engine_id: str
    ) -> Delivered:
        params = self.fake.by_sid(engine_id).params
        return Delivered(kind="text", to=params["To"].removeprefix("+"), text=params["Body"])
