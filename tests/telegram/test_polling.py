"""A polling session on a real server: updates recorded as they come, a restart resuming from
Telegram's confirmed offset without a duplicate, and the sender honouring Telegram's answers
(flood control's ``retry_after``, a chat not found, a refused token)."""

from __future__ import annotations

import httpx

from tests.conftest import RunningServer
from tests.support.events import EventWatcher, message_status, status_is
from tests.support.fake_telegram import FakeTelegram
from tests.telegram.conftest import SESSION, config_for, create_session, eventually, history

CHAT = 5511988887777


async def test_polling_resumes_after_a_restart_without_duplicates(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    await create_session(server, api, config_for(telegram))
    async with EventWatcher(server.services.bus) as watcher:
        for text in ("um", "dois"):
            telegram.queue(telegram.update(message=telegram.user_message(CHAT, text=text)))
        await watcher.wait_for(
            lambda e: e.type == "message.received" and e.payload["text"] == "dois"
        )
    await eventually(lambda: telegram.pending == [])  # confirmed by the next poll's offset
    # the next batch is recorded, but the call confirming it never reaches Telegram (the
    # process dies first): Telegram keeps it, and gives it again after the restart
    telegram.lose_next_confirmation = True
    three = telegram.update(message=telegram.user_message(CHAT, text="três"))
    async with EventWatcher(server.services.bus) as watcher:
        telegram.queue(three)
        await watcher.wait_for(
            lambda e: e.type == "message.received" and e.payload["text"] == "três"
        )
    await eventually(lambda: not telegram.lose_next_confirmation)
    assert [u["update_id"] for u in telegram.pending] == [three["update_id"]]
    assert (await api.post(f"/api/v1/sessions/{SESSION}/stop")).status_code == 200
    telegram.queue(telegram.update(message=telegram.user_message(CHAT, text="quatro")))
    async with EventWatcher(server.services.bus) as watcher:
        assert (await api.post(f"/api/v1/sessions/{SESSION}/start")).status_code == 200
        await watcher.wait_for(status_is(SESSION, "WORKING"))
        await watcher.wait_for(
            lambda e: e.type == "message.received" and e.payload["text"] == "quatro"
        )
    await eventually(lambda: telegram.pending == [])
    texts = sorted(m["text"] for m in await history(api))
    assert texts == sorted(["um", "dois", "três", "quatro"])  # "três" once, though given twice
    restarted = [c for c in telegram.calls_of("getUpdates") if "offset" not in c.params]
    assert len(restarted) == 2  # each start begins at Telegram's earliest unconfirmed update


async def test_a_sent_message_is_only_ever_sent(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    await create_session(server, api, config_for(telegram))
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(
            f"/api/v1/sessions/{SESSION}/messages", json={"to": str(CHAT), "text": "Olá"}
        )
        assert sent.status_code in (200, 201, 202), sent.text
        message_id = sent.json()["id"]
        await watcher.wait_for(message_status(message_id, "sent"))
    stored = (await api.get(f"/api/v1/messages/{message_id}")).json()
    assert (stored["status"], stored["to"], stored["channel"]) == ("sent", str(CHAT), "telegram")
    assert stored["engine_message_id"] == f"{CHAT}:1"
    assert telegram.calls_of("sendMessage")[0].params["chat_id"] == CHAT


async def test_the_sender_waits_as_long_as_flood_control_says(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    await create_session(server, api, config_for(telegram))
    telegram.flood("sendMessage", retry_after=1)
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(
            f"/api/v1/sessions/{SESSION}/messages", json={"to": str(CHAT), "text": "devagar"}
        )
        message_id = sent.json()["id"]
        await watcher.wait_for(message_status(message_id, "sent"), timeout=10)
    first, second = telegram.calls_of("sendMessage")
    assert second.at - first.at >= 1.0  # the retry policy alone would wait 0.01 s here
    stored = (await api.get(f"/api/v1/messages/{message_id}")).json()
    assert stored["attempts"] == 2  # the one flood control refused, and the one sent


async def test_a_chat_not_found_fails_the_message_with_telegrams_words(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    await create_session(server, api, config_for(telegram))
    telegram.missing_chats.add(CHAT)
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post(
            f"/api/v1/sessions/{SESSION}/messages", json={"to": str(CHAT), "text": "alô"}
        )
        message_id = sent.json()["id"]
        await watcher.wait_for(message_status(message_id, "failed"))
    stored = (await api.get(f"/api/v1/messages/{message_id}")).json()
    assert "Bad Request: chat not found" in stored["error"]
    assert len(telegram.calls_of("sendMessage")) == 1  # not retried


async def test_a_refused_token_fails_the_session_with_the_reason(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    config = config_for(telegram, bot_token=f"{telegram.bot_id}:{'y' * 35}")
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post(
            "/api/v1/sessions", json={"name": SESSION, "engine": "telegram", "config": config}
        )
        assert created.status_code == 201, created.text
        failed = await watcher.wait_for(status_is(SESSION, "FAILED"))
    assert "Unauthorized" in failed.payload["reason"]
    shown = (await api.get(f"/api/v1/sessions/{SESSION}")).json()
    assert shown["status"] == "FAILED"
