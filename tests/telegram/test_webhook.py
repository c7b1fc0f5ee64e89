"""A webhook-mode session on a real server: setWebhook with the session's URL and secret token,
the secret checked before anything is read (a forged call is refused with nothing stored), an
update delivered twice stored once, and the secrets never shown."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import AUTH, RunningServer, make_settings, serve
from tests.contract.drivers import png
from tests.support.events import EventWatcher, of_type
from tests.support.fake_telegram import FakeTelegram
from tests.telegram.conftest import (
    SECRET,
    SESSION,
    config_for,
    create_session,
    history,
    webhook_config,
)
from zapgate.db import tables
from zapgate.engines.telegram.config import derived_secret
from zapgate.services import build_services

CHAT = 5511988887777
PATH = f"/api/v1/telegram/default/{SESSION}/webhook"


def test_the_derived_secret_token_matches_a_known_answer() -> None:
    # computed independently, without its "=" padding:
    # printf 'zapgate telegram webhook secret v1\ndefault/bot' \
    #   | openssl dgst -sha256 -hmac '123:abc' -binary | basenc --base64url
    assert derived_secret("123:abc", "default", "bot") == (
        "bRWUcVQ7_YElOA0XTTHI8gF5J-oDuA5rCSc8DIdkAaw"
    )
    assert derived_secret("123:abc", "default", "bot2") != derived_secret(
        "123:abc", "default", "bot"
    )


async def test_set_webhook_gets_the_sessions_url_and_secret(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    await create_session(server, api, webhook_config(telegram, server))
    hook = telegram.webhook
    assert hook is not None
    assert hook.url == server.url + PATH
    assert hook.secret_token == SECRET
    assert hook.allowed_updates is not None
    assert {"message", "edited_message", "message_reaction"} <= set(hook.allowed_updates)
    assert telegram.calls_of("getUpdates") == []


async def test_without_a_secret_token_one_is_derived_from_the_bot_token(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    config = webhook_config(telegram, server)
    del config["secret_token"]
    await create_session(server, api, config)
    assert telegram.webhook is not None
    assert telegram.webhook.secret_token == derived_secret(telegram.token, "default", SESSION)
    update = telegram.update(message=telegram.user_message(CHAT, text="Oi!"))
    assert await telegram.push(update) == 200


async def test_an_update_delivered_twice_is_stored_once(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    await create_session(server, api, webhook_config(telegram, server))
    update = telegram.update(message=telegram.user_message(CHAT, text="Oi!"))
    async with EventWatcher(server.services.bus) as watcher:
        for _ in range(2):  # Telegram retries a call it did not see answered 200
            assert await telegram.push(update) == 200
        received = await watcher.wait_for(of_type("message.received", SESSION))
    stored = await history(api)
    assert len(stored) == 1
    message = stored[0]
    assert (message["from"], message["to"], message["text"]) == (
        str(CHAT),
        str(telegram.bot_id),
        "Oi!",
    )
    assert (message["channel"], message["chat_id"]) == ("telegram", f"{CHAT}@telegram")
    assert message["engine_message_id"] == f"{CHAT}:1"
    assert message["raw"]["user"]["first_name"] == "Cliente"
    assert len([e for e in watcher.seen if e.type == "message.received"]) == 1
    assert received.payload["id"] == message["id"]


async def test_a_forged_update_is_refused_and_nothing_is_stored(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    await create_session(server, api, webhook_config(telegram, server))
    update = telegram.update(message=telegram.user_message(CHAT, text="forjada"))
    for secret in ("", "wrong-secret", SECRET + "x", SECRET[:-1]):
        assert await telegram.post(update, secret=secret) == 401
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        junk = await anonymous.post(PATH, content=b"not json")  # the secret comes first
        assert junk.status_code == 401
        assert junk.json()["error"] == "unauthorized"
        other = await anonymous.post(
            "/api/v1/telegram/default/nosuchsession/webhook",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert other.status_code == 401  # the same answer: no telling which sessions exist
    assert await history(api) == []
    assert await telegram.post(update) == 200
    assert [m["text"] for m in await history(api)] == ["forjada"]


async def test_a_polling_session_takes_no_webhook_calls(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    await create_session(server, api, config_for(telegram, secret_token=SECRET))
    update = telegram.update(message=telegram.user_message(CHAT, text="pela porta errada"))
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        answer = await anonymous.post(
            PATH, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
    assert answer.status_code == 401
    assert await history(api) == []


async def test_a_photo_edits_and_reactions_arrive_through_the_webhook(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    await create_session(server, api, webhook_config(telegram, server))
    photo = telegram.user_message(
        CHAT, photo=telegram.photo_sizes(png(), "image/png"), caption="foto"
    )
    text = telegram.user_message(CHAT, text="antes")
    for update in (
        telegram.update(message=photo),
        telegram.update(message=text),
        telegram.update(edited_message={**text, "text": "depois", "edit_date": text["date"] + 1}),
        telegram.reaction_update(CHAT, text["message_id"], ["👍"]),
    ):
        assert await telegram.push(update) == 200
    stored = {m["engine_message_id"]: m for m in await history(api)}
    image = stored[f"{CHAT}:1"]
    assert (image["type"], image["text"]) == ("image", "foto")
    assert image["media"]["mime_type"] == "image/png"
    content = await api.get(f"/api/v1/media/{image['media']['id']}")
    assert content.content == png()
    assert stored[f"{CHAT}:2"]["text"] == "depois"
    reaction = next(m for m in stored.values() if m["type"] == "reaction")
    assert reaction["emoji"] == "👍"


async def test_the_secrets_are_never_shown_and_must_be_given_again_when_they_would_move(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    await create_session(server, api, webhook_config(telegram, server))
    shown = (await api.get(f"/api/v1/sessions/{SESSION}")).json()
    assert telegram.token not in str(shown)
    assert SECRET not in str(shown)
    moved = await api.patch(
        f"/api/v1/sessions/{SESSION}",
        json={"config": {**shown["config"], "public_url": "https://elsewhere.example"}},
    )
    assert moved.status_code == 422, moved.text
    assert "bot_token" in moved.text


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"mode": "webhook", "public_url": None}, "public_url"),
        ({"bot_token": "not-a-token"}, "bot_token"),
        ({"api_base": "http://10.1.2.3"}, "api_base"),
        ({"secret_token": "has spaces"}, "secret_token"),
        ({"mode": "push"}, "mode"),
    ],
)
async def test_a_bad_config_is_a_422(
    api: httpx.AsyncClient, telegram: FakeTelegram, change: dict[str, object], said: str
) -> None:
    config = {k: v for k, v in {**config_for(telegram), **change}.items() if v is not None}
    answer = await api.post(
        "/api/v1/sessions", json={"name": "bad", "engine": "telegram", "config": config}
    )
    assert answer.status_code == 422, answer.text
    assert said in answer.text


async def test_forged_calls_spend_the_addresss_auth_failure_budget(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    settings = make_settings(tmp_path, webhook_allowlist="127.0.0.1", auth_failures_per_minute=3)
    async with (
        serve(build_services(settings)) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH) as api,
    ):
        await create_session(server, api, webhook_config(telegram, server))
        update = telegram.update(message=telegram.user_message(CHAT, text="x"))
        statuses = [await telegram.post(update, secret="wrong") for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        assert await telegram.post(update) == 429  # the address is shut out for a while
        assert await history(api) == []


async def test_the_bot_token_and_secret_token_are_sealed_at_rest(
    server: RunningServer, api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    await create_session(server, api, webhook_config(telegram, server))
    async with server.services.database.connect() as connection:
        stored = (
            await connection.execute(
                sa.select(tables.sessions.c.config).where(tables.sessions.c.name == SESSION)
            )
        ).scalar_one()
    for key, plain in (("bot_token", telegram.token), ("secret_token", SECRET)):
        assert stored[key].startswith("sealed:v1:")
        assert plain not in json.dumps(stored)
    session = await server.services.sessions.get("default", SESSION)
    assert session.config["bot_token"] == telegram.token  # opened when read
