"""SMS fallback: a WhatsApp text that fails, or is not delivered in time, goes again by SMS
(once), both messages linked; one delivered in time does not."""

from __future__ import annotations

import asyncio
import time

import httpx
import sqlalchemy as sa

from tests.conftest import RunningServer
from tests.sms.conftest import PEER, SESSION, create_session
from tests.support.events import EventWatcher, Predicate
from tests.support.fake_twilio import FakeTwilio
from zapgate.db.tables import fallbacks
from zapgate.events.model import Event

NUMBER = PEER.lstrip("+")


def of_type_for(event_type: str, message_id: str) -> Predicate:
    def matches(event: Event) -> bool:
        return event.type == event_type and event.payload.get("id") == message_id

    return matches


def sms_fallback_of(message_id: str) -> Predicate:
    def matches(event: Event) -> bool:
        return event.type == "message.queued" and event.payload.get("fallback_of") == message_id

    return matches


async def whatsapp_session(api: httpx.AsyncClient, name: str, **config: object) -> None:
    made = await api.post("/api/v1/sessions", json={"name": name, "config": config})
    assert made.status_code == 201, made.text


async def send(api: httpx.AsyncClient, session: str, after: float) -> dict[str, object]:
    body = {
        "to": NUMBER,
        "text": "Seu código: 4821",
        "fallback": {"session": SESSION, "after_seconds": after},
    }
    sent = await api.post(f"/api/v1/sessions/{session}/messages", json=body)
    assert sent.status_code == 202, sent.text
    assert sent.json()["fallback"] == {"session": SESSION, "after_seconds": after}
    return sent.json()  # type: ignore[no-any-return]


async def test_a_failed_whatsapp_text_goes_by_sms_at_once_and_both_are_linked(
    server: RunningServer, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    await create_session(server, api, twilio)
    await whatsapp_session(api, "wa-fail", send_failure_rate=1, failure_kind="permanent")
    async with EventWatcher(server.services.bus) as watcher:
        original = await send(api, "wa-fail", after=3600)  # failing: no waiting for the hour
        queued = await watcher.wait_for(sms_fallback_of(str(original["id"])), timeout=15)
        sms = queued.payload
        await watcher.wait_for(of_type_for("message.sent", str(sms["id"])), timeout=15)
    assert queued.session == SESSION
    assert queued.channel == "sms"
    assert sms["to"] == PEER
    assert sms["text"] == "Seu código: 4821"
    assert (sms["encoding"], sms["segments"]) == ("UCS-2", 1)  # "ó" is not in GSM-7
    failed = (await api.get(f"/api/v1/messages/{original['id']}")).json()
    assert failed["status"] == "failed"
    assert failed["fallback_id"] == sms["id"]
    assert [s.params["To"] for s in twilio.sends] == [PEER]  # once
    assert twilio.sends[0].params["Body"] == "Seu código: 4821"


async def test_a_text_not_delivered_in_time_goes_by_sms_and_stays_sent(
    server: RunningServer, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    await create_session(server, api, twilio)
    slow = {"kind": "fixed", "seconds": 3600}
    await whatsapp_session(api, "wa-slow", delivered_latency=slow)
    async with EventWatcher(server.services.bus) as watcher:
        original = await send(api, "wa-slow", after=1)
        queued = await watcher.wait_for(sms_fallback_of(str(original["id"])), timeout=15)
    stored = (await api.get(f"/api/v1/messages/{original['id']}")).json()
    assert stored["status"] == "sent"  # it may still arrive: both are linked
    assert stored["fallback_id"] == queued.payload["id"]


async def test_a_text_delivered_in_time_needs_no_sms(
    server: RunningServer, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    await create_session(server, api, twilio)
    original = await send(api, "default", after=1)
    deadline = time.monotonic() + 15
    while (status := await fallback_status(server, str(original["id"]))) == "pending":
        assert time.monotonic() < deadline, "the fallback was never settled"
        await asyncio.sleep(0.1)  # the watcher looks every second: its own clock, not ours
    assert status == "skipped"
    stored = (await api.get(f"/api/v1/messages/{original['id']}")).json()
    assert stored["status"] in ("delivered", "read")
    assert "fallback_id" not in stored
    assert twilio.sends == []


async def fallback_status(server: RunningServer, message_id: str) -> str:
    statement = sa.select(fallbacks.c.status).where(fallbacks.c.message_id == message_id)
    async with server.services.database.connect() as connection:
        return str(await connection.scalar(statement))
