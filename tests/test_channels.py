"""Channels: which addresses each one reaches, how a chat id names its channel, and the
``channel`` every message and event carries."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningServer
from zapgate.channels import Channel, bare, channel_of, recipient
from zapgate.errors import InvalidRecipient
from zapgate.phone import address_of

SEND = "/api/v1/sessions/default/messages"


@pytest.mark.parametrize(
    ("channel", "raw", "address"),
    [
        ("whatsapp", "+55 (11) 99999-9999", "5511999999999"),
        ("whatsapp", "123456789012345@lid", "123456789012345@lid"),
        ("telegram", "123456789", "123456789@telegram"),
        ("telegram", " -1001234567890 ", "-1001234567890@telegram"),
        ("telegram", "@zapgate_news", "@zapgate_news"),
        ("telegram", "42@telegram", "42@telegram"),
        ("sms", "+55 11 99999-9999", "+5511999999999@sms"),
        ("sms", "+5511999999999@sms", "+5511999999999@sms"),
    ],
)
def test_each_channel_reaches_its_own_addresses(channel: str, raw: str, address: str) -> None:
    assert recipient(channel, raw) == address
    assert channel_of(address) == channel


@pytest.mark.parametrize(
    ("channel", "raw"),
    [
        ("whatsapp", "@zapgate_news"),
        ("whatsapp", "123456789@telegram"),
        ("whatsapp", "+5511999999999@sms"),
        ("telegram", "+55 11 99999-9999"),
        ("telegram", "@abc"),  # usernames have 5 to 32 characters
        ("telegram", "5511999999999@c.us"),
        ("sms", "@zapgate_news"),
        ("sms", "123"),
    ],
)
def test_an_address_of_another_channel_is_refused(channel: str, raw: str) -> None:
    with pytest.raises(InvalidRecipient):
        recipient(channel, raw)


def test_addresses_are_shown_without_the_channels_suffix() -> None:
    assert address_of("123456789@telegram") == "123456789"
    assert address_of("+5511999999999@sms") == "+5511999999999"
    assert address_of("5511999999999@c.us") == "5511999999999"
    assert address_of("120363@g.us") == "120363@g.us"
    assert bare("-100123@telegram") == "-100123"
    assert channel_of("120363@g.us") is Channel.WHATSAPP


async def test_messages_and_events_carry_their_channel(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    sent = await api.post(SEND, json={"to": "5511988887777", "text": "oi"})
    assert sent.status_code == 202, sent.text
    assert sent.json()["channel"] == "whatsapp"
    events = (await api.get("/api/v1/events", params={"limit": 1000})).json()["data"]
    queued = [e for e in events if e["type"] == "message.queued"]
    assert queued
    assert queued[-1]["channel"] == "whatsapp"
    assert queued[-1]["payload"]["channel"] == "whatsapp"
    statuses = [e for e in events if e["type"] == "session.status"]
    assert statuses
    assert {e["channel"] for e in statuses} == {"whatsapp"}


async def test_a_whatsapp_session_refuses_another_channels_address(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    for to in ("@zapgate_news", "-1001234567890"):
        refused = await api.post(SEND, json={"to": to, "text": "oi"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] in ("invalid_recipient", "invalid_phone_number")
    refused = await api.post(SEND, json={"to": "@zapgate_news", "text": "oi"})
    assert refused.json()["error"] == "invalid_recipient"


async def test_a_fallback_must_be_an_sms_session_and_a_phone_number(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    made = await api.post("/api/v1/sessions", json={"name": "wa2", "start": False})
    assert made.status_code == 201, made.text
    for to, fallback, why in (
        ("5511988887777", {"session": "wa2", "after_seconds": 60}, "not an SMS session"),
        ("5511988887777", {"session": "nosuch", "after_seconds": 60}, "no session"),
        ("123456789012345@lid", {"session": "wa2", "after_seconds": 60}, "phone number"),
    ):
        body = {"to": to, "text": "oi", "fallback": fallback}
        refused = await api.post(SEND, json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "invalid_fallback"
        assert why in refused.json()["detail"]
    history = (await api.get("/api/v1/sessions/default/messages")).json()["data"]
    assert [m for m in history if m["text"] == "oi"] == []  # nothing half-done
    too_soon = {
        "to": "5511988887777",
        "text": "oi",
        "fallback": {"session": "x", "after_seconds": 0},
    }
    assert (await api.post(SEND, json=too_soon)).status_code == 422
