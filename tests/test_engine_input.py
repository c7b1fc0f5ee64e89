"""What engines report is stored as received, made storable (it is not the tenant's to fix)."""

from __future__ import annotations

from zapgate.clock import now_ms
from zapgate.engines.base import InboundMessage
from zapgate.messages.repository import HistoryQuery
from zapgate.services import Services


async def test_nul_and_lone_surrogates_from_an_engine_are_replaced(services: Services) -> None:
    inbound = InboundMessage(
        "wa\x00id", "5511988887777", "5511000000000", "text", "a\x00b\ud800c", now_ms()
    )
    stored = await services.messages.record_inbound("default", "default", inbound)
    assert stored.text == "a\ufffdb\ufffdc"
    page = await services.messages.history(HistoryQuery("default", "default", limit=10))
    assert [m.text for m in page] == ["a\ufffdb\ufffdc"]
    assert page[0].engine_message_id == "wa\ufffdid"
