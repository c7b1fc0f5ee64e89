"""The bot connector against a real HTTP bot on 127.0.0.1: what arrives is asked of the bot
(signed like a webhook), its reply goes back to the same chat, a human takes a chat over and
hands it back, and a reply that is no message fails the delivery without a retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from tests.conftest import RunningServer, free_port
from tests.support.events import EventWatcher, Predicate
from tests.support.receiver import Received, Receiver
from tests.test_webhooks import inbound, settled, working
from zapgate.events.model import Event
from zapgate.integrations.bot import matches
from zapgate.integrations.model import integration_id
from zapgate.webhooks import worker

PEER = "5511988887777"
BOT_PATH = "/api/v1/sessions/default/integrations/bot"


def answers(got: Received) -> tuple[int, Any]:
    """A small bot: greets, hands 'humano' to a person, says nothing to 'ok', errs on 'bug'."""
    text = got.json["payload"]["text"]
    if text == "oi":
        return 200, {"reply": {"text": "Olá! Como posso ajudar?"}}
    if text == "humano":
        return 200, {"reply": [{"text": "Vou chamar alguém."}], "handoff": True}
    if text == "bug":
        return 200, {"reply": {"type": "location"}}
    if text == "ok":
        return 204, None
    return 200, {"reply": {"text": f"eco: {text}"}}


@pytest.fixture
async def bot() -> AsyncIterator[Receiver]:
    receiver = Receiver(free_port(), respond=answers)
    await receiver.start()
    yield receiver
    await receiver.stop()


def reply_to(text: str) -> Predicate:
    def matches_(event: Event) -> bool:
        payload = event.payload
        return (
            event.type == "message.queued"
            and payload.get("to") == PEER
            and payload.get("text") == text
        )

    return matches_


async def put_bot(api: httpx.AsyncClient, bot: Receiver, **extra: Any) -> dict[str, Any]:
    put = await api.put(BOT_PATH, json={"url": bot.url, "timeout_seconds": 5, **extra})
    assert put.status_code == 200, put.text
    return dict(put.json())


async def settle(server: RunningServer) -> None:
    """Every delivery so far was tried (the dispatcher rests)."""
    await server.services.dispatcher.until_quiet()


async def test_the_bot_answers_in_the_chat_and_a_human_takes_over_and_gives_back(
    server: RunningServer, api: httpx.AsyncClient, bot: Receiver
) -> None:
    await working(server)
    created = await put_bot(api, bot)
    secret = str(created["secret"])
    assert secret.startswith("whsec_")
    assert (await api.get(BOT_PATH)).json()["secret"] is None  # shown when created only
    async with EventWatcher(server.services.bus) as watcher:
        asked = await inbound(api, "oi")
        await watcher.wait_for(reply_to("Olá! Como posso ajudar?"), timeout=10)
        first = bot.requests[0]
        envelope = StandardWebhook(secret).verify(first.body, first.headers)
        assert envelope["type"] == "message.received"
        assert envelope["payload"]["id"] == asked

        await inbound(api, "humano")
        await watcher.wait_for(reply_to("Vou chamar alguém."), timeout=10)
    await settle(server)
    paused = (await api.get(f"{BOT_PATH}/chats")).json()["data"]
    assert [chat["chat"] for chat in paused] == [f"{PEER}@c.us"]

    await inbound(api, "ainda aí?")  # the human has the chat: the bot is not asked
    await settle(server)
    assert len(bot.requests) == 2

    resumed = await api.post(f"{BOT_PATH}/chats/{PEER}/resume")
    assert resumed.json() == {"chat": f"{PEER}@c.us", "paused": False, "paused_at": None}
    async with EventWatcher(server.services.bus) as watcher:
        await inbound(api, "voltei")
        await watcher.wait_for(reply_to("eco: voltei"), timeout=10)
    assert len(bot.requests) == 3


async def test_a_reply_that_is_no_message_fails_at_once_and_nothing_is_sent(
    server: RunningServer, api: httpx.AsyncClient, bot: Receiver
) -> None:
    await working(server)
    await put_bot(api, bot)
    await inbound(api, "bug")
    await inbound(api, "ok")  # answered 204: no reply, and fine
    await settle(server)
    assert len(bot.requests) == 2  # asked once each: no retry of the bad reply
    sent = await api.get("/api/v1/sessions/default/messages", params={"direction": "out"})
    assert sent.json()["data"] == []
    page = (await api.get(f"{BOT_PATH}/deliveries")).json()["data"]
    bad, fine = sorted(page, key=lambda delivery: delivery["event_seq"])
    assert bad["status"] == "failed"
    assert bad["attempts"] == 1
    assert bad["last_error"].startswith("the bot's reply: ")
    assert fine["status"] == "succeeded"
    assert fine["attempt_log"][-1]["response"] == "no reply"
    overview = (await api.get("/api/v1/overview")).json()
    assert overview["webhooks"] == []
    [shown] = overview["integrations"]
    assert {k: shown[k] for k in ("kind", "session", "url", "active", "pending", "failed")} == {
        "kind": "bot",
        "session": "default",
        "url": bot.url,
        "active": True,
        "pending": 0,
        "failed": 1,
    }


async def test_the_filter_takes_chats_prefixes_and_whole_keywords() -> None:
    chat = f"{PEER}@c.us"
    assert matches({}, chat, None)
    assert matches({"chats": [PEER]}, chat, "x")
    assert not matches({"chats": ["5511000000000"]}, chat, "x")
    assert matches({"prefix": "/bot"}, chat, "/BOT ajuda")
    assert not matches({"prefix": "/bot"}, chat, "ajuda /bot")
    assert matches({"keywords": ["pedido"]}, chat, "Meu PEDIDO atrasou")
    assert not matches({"keywords": ["pedido"]}, chat, "pedidos")
    assert not matches({"keywords": ["pedido"]}, chat, None)
    assert matches({"keywords": ["nota fiscal"]}, chat, "preciso da nota fiscal")
    assert not matches({"prefix": "!", "keywords": ["oi"]}, chat, "oi")


async def test_a_bot_past_its_timeout_is_asked_again_and_answers_once(
    server: RunningServer, api: httpx.AsyncClient, bot: Receiver
) -> None:
    await working(server)
    await put_bot(api, bot, timeout_seconds=1)
    bot.hold()  # the bot thinks too long
    async with EventWatcher(server.services.bus) as watcher:
        await inbound(api, "devagar")
        await bot.wait_until(lambda r: len(r.waiting) == 1)
        dispatcher = server.services.dispatcher
        await dispatcher.recorded_beyond(dispatcher.attempts)  # the first try timed out
        bot.release()
        await watcher.wait_for(reply_to("eco: devagar"), timeout=10)
    await settle(server)
    sent = await api.get("/api/v1/sessions/default/messages", params={"direction": "out"})
    assert [m["text"] for m in sent.json()["data"]] == ["eco: devagar"]
    page = (await api.get(f"{BOT_PATH}/deliveries")).json()["data"]
    assert [(d["status"], d["attempts"]) for d in page] == [("succeeded", 2)]
    assert page[0]["attempt_log"][0]["error"] == "timed out after 1 s"


async def test_a_chat_waiting_for_a_slow_answer_holds_up_no_other_chat(
    server: RunningServer, api: httpx.AsyncClient, bot: Receiver
) -> None:
    """A bot's lanes are its chats: while it thinks about one chat's message, another chat's
    is asked at once, and the first chat's next message waits its turn (order per chat)."""
    await working(server)
    await put_bot(api, bot, timeout_seconds=30)
    other = "5511977776666"
    bot.hold()
    async with EventWatcher(server.services.bus) as watcher:
        await inbound(api, "primeira")
        await bot.wait_until(lambda r: len(r.waiting) == 1)
        await inbound(api, "segunda")  # same chat: after the first
        said = await api.post(
            "/api/v1/sessions/default/simulate/inbound", json={"from": other, "text": "outro"}
        )
        assert said.status_code == 201, said.text
        await bot.wait_until(lambda r: len(r.waiting) == 2)  # the other chat did not wait
        assert sorted(text_of(got) for got in bot.waiting) == ["outro", "primeira"]
        bot.release()
        await watcher.wait_for(reply_to("eco: segunda"), timeout=10)
        await watcher.wait_for(lambda event: event.payload.get("text") == "eco: outro", 10)
    asked = [(kind, text_of(got)) for kind, got in bot.timeline]
    assert asked.index(("end", "primeira")) < asked.index(("start", "segunda"))
    await settle(server)  # the attempts are stored after the replies are queued
    page = (await api.get(f"{BOT_PATH}/deliveries")).json()["data"]
    assert [d["status"] for d in page] == ["succeeded"] * 3


def text_of(got: Received) -> str:
    return str(got.json["payload"]["text"])


async def test_chats_past_the_waiting_bound_are_still_retried_and_given_up(
    server: RunningServer, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bot down for many chats: beyond ``WAITING_MAX`` waiting lanes the worker forgets the
    latest due (its skip list stays bounded) and finds them again; every chat is still tried
    on schedule and given up, and the worker comes to rest (no scan loop)."""
    monkeypatch.setattr(worker, "WAITING_MAX", 1)
    down = Receiver(free_port(), respond=lambda _got: (503, {"error": "down"}))
    await down.start()
    try:
        await working(server)
        await put_bot(api, down)
        senders = [f"55119777700{n:02d}" for n in range(4)]
        for sender in senders:
            said = await api.post(
                "/api/v1/sessions/default/simulate/inbound", json={"from": sender, "text": "oi"}
            )
            assert said.status_code == 201, said.text
        await down.wait_until(lambda r: len(r.requests) >= 4)  # every delivery is planned
        await settled(server, integration_id("default", "default", "bot"))
        await settle(server)  # and the worker rests
    finally:
        await down.stop()
    page = (await api.get(f"{BOT_PATH}/deliveries")).json()["data"]
    assert sorted((d["status"], d["attempts"]) for d in page) == [("failed", 3)] * 4
    assert len(down.requests) == 12
