"""Each message type goes out as the Bot API method Telegram documents for it (the fake checks
every parameter), and Telegram's errors are sorted: flood control is transient and says how
long to wait, a chat not found or a blocked bot fails the message with Telegram's words, a
refused token fails the session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.contract.drivers import WEBP, mp4, ogg_opus, pdf, png
from tests.support.fake_telegram import Call, FakeTelegram
from tests.support.sink import RecordingSink, is_status
from tests.telegram.conftest import config_for
from zapgate.clock import SystemClock
from zapgate.engines.base import (
    Contact,
    EngineNotReady,
    Location,
    Media,
    OutboundMessage,
    PermanentEngineError,
    Poll,
    Presence,
    SessionConfig,
    SessionStatus,
    TransientEngineError,
    UnsupportedMessageType,
)
from zapgate.engines.telegram.engine import TelegramEngine
from zapgate.webhooks.ssrf import Allowlist

CHAT = 5511988887777


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def engine(telegram: FakeTelegram, sink: RecordingSink) -> AsyncIterator[TelegramEngine]:
    engine = TelegramEngine(Allowlist.parse("127.0.0.1"), SystemClock(), 1 << 20)
    await engine.start(SessionConfig("default", "bot", config_for(telegram)), sink)
    await sink.wait_for(is_status(SessionStatus.WORKING))
    try:
        yield engine
    finally:
        await engine.stop()


def out(kind: str, **fields: Any) -> OutboundMessage:
    return OutboundMessage(f"msg_{kind}", str(CHAT), kind, fields.pop("text", None), **fields)


def last(telegram: FakeTelegram) -> Call:
    return next(c for c in reversed(telegram.calls) if c.method not in ("getUpdates", "getMe"))


async def test_a_text_goes_as_send_message_with_its_link_preview_choice(
    telegram: FakeTelegram, engine: TelegramEngine
) -> None:
    first = await engine.send(out("text", text="Olá https://zapgate.example"))
    assert first.engine_message_id == f"{CHAT}:1"
    call = last(telegram)
    assert (call.method, call.encoding) == ("sendMessage", "json")
    assert call.params == {
        "chat_id": CHAT,
        "text": "Olá https://zapgate.example",
        "link_preview_options": {"is_disabled": True},
    }
    second = await engine.send(out("text", text="com prévia", link_preview=True))
    assert second.engine_message_id == f"{CHAT}:2"
    assert last(telegram).params["link_preview_options"] == {"is_disabled": False}


@pytest.mark.parametrize(
    ("kind", "media", "voice", "method", "field"),
    [
        ("image", Media(png(), "image/png", "photo.png"), False, "sendPhoto", "photo"),
        ("video", Media(mp4(), "video/mp4", "clip.mp4"), False, "sendVideo", "video"),
        (
            "audio",
            Media(b"ID3\x03" + b"\0" * 32, "audio/mpeg", "song.mp3"),
            False,
            "sendAudio",
            "audio",
        ),
        ("audio", Media(ogg_opus(), "audio/ogg", None), True, "sendVoice", "voice"),
        (
            "document",
            Media(pdf(), "application/pdf", "relatório.pdf"),
            False,
            "sendDocument",
            "document",
        ),
        ("sticker", Media(WEBP, "image/webp", None), False, "sendSticker", "sticker"),
    ],
)
async def test_a_file_is_uploaded_as_multipart_to_its_method(
    telegram: FakeTelegram,
    engine: TelegramEngine,
    kind: str,
    media: Media,
    voice: bool,
    method: str,
    field: str,
) -> None:
    caption = None if kind == "sticker" else "a legenda"
    receipt = await engine.send(out(kind, text=caption, media=media, voice=voice))
    call = last(telegram)
    assert (call.method, call.encoding) == (method, "multipart")
    assert call.files[field].data == media.data
    assert call.files[field].mime_type == media.mime_type
    if media.filename:
        assert call.files[field].filename == media.filename
    assert call.params.get("caption") == caption
    assert receipt.engine_message_id == f"{CHAT}:{call.result['message_id']}"


async def test_a_reply_points_at_the_message_it_answers(
    telegram: FakeTelegram, engine: TelegramEngine
) -> None:
    theirs = telegram.user_message(CHAT, text="pergunta")
    await engine.send(out("text", text="resposta", reply_to=f"{CHAT}:{theirs['message_id']}"))
    call = last(telegram)
    assert call.params["reply_parameters"] == {"message_id": theirs["message_id"]}
    assert call.result["reply_to_message"]["text"] == "pergunta"
    image = Media(png(), "image/png", "photo.png")
    await engine.send(out("image", media=image, reply_to=f"{CHAT}:{theirs['message_id']}"))
    assert last(telegram).params["reply_parameters"] == {"message_id": theirs["message_id"]}


async def test_a_place_is_a_venue_and_a_point_a_location(
    telegram: FakeTelegram, engine: TelegramEngine
) -> None:
    await engine.send(out("location", location=Location(-23.55, -46.63)))
    assert (last(telegram).method, last(telegram).params) == (
        "sendLocation",
        {"chat_id": CHAT, "latitude": -23.55, "longitude": -46.63},
    )
    place = Location(-22.95, -43.21, "Cristo Redentor", "Parque Nacional da Tijuca")
    await engine.send(out("location", location=place))
    call = last(telegram)
    assert call.method == "sendVenue"
    assert (call.params["title"], call.params["address"]) == (place.name, place.address)


async def test_a_contact_card_keeps_its_vcard(
    telegram: FakeTelegram, engine: TelegramEngine
) -> None:
    card = Contact("Ana Maria Souza", ("+5511977776666",), "BEGIN:VCARD\nVERSION:3.0\nEND:VCARD")
    await engine.send(out("contact", contact=card))
    assert last(telegram).params == {
        "chat_id": CHAT,
        "phone_number": "+5511977776666",
        "first_name": "Ana",
        "last_name": "Maria Souza",
        "vcard": card.vcard,
    }


async def test_a_reaction_is_set_and_taken_back(
    telegram: FakeTelegram, engine: TelegramEngine
) -> None:
    theirs = telegram.user_message(CHAT, text="reaja")
    target = f"{CHAT}:{theirs['message_id']}"
    receipt = await engine.send(out("reaction", target=target, emoji="❤️"))  # WhatsApp's heart
    assert receipt.engine_message_id.startswith(f"{target}:reaction:")
    assert last(telegram).params == {
        "chat_id": CHAT,
        "message_id": theirs["message_id"],
        "reaction": [{"type": "emoji", "emoji": "❤"}],  # Telegram's, without U+FE0F
    }
    await engine.send(out("reaction", target=target, emoji=""))
    assert last(telegram).params["reaction"] == []
    with pytest.raises(PermanentEngineError, match="not a reaction Telegram offers"):
        await engine.send(out("reaction", target=target, emoji="🦖"))


async def test_a_public_username_is_a_chat_and_the_receipt_names_its_id(
    telegram: FakeTelegram, engine: TelegramEngine
) -> None:
    telegram.usernames["@zapgate_news"] = -1001234567890
    message = OutboundMessage("msg_c", "@zapgate_news", "text", "no canal")
    receipt = await engine.send(message)
    assert receipt.engine_message_id == "-1001234567890:1"
    assert last(telegram).params["chat_id"] == "@zapgate_news"


async def test_what_telegram_lacks_is_refused_before_any_call(
    telegram: FakeTelegram, engine: TelegramEngine
) -> None:
    calls = len(telegram.calls)
    with pytest.raises(UnsupportedMessageType, match="telegram"):
        await engine.send(out("poll", poll=Poll("Almoço?", ("sim", "não"))))
    with pytest.raises(UnsupportedMessageType, match="telegram"):
        await engine.send(out("template", template={"name": "hello_world"}))
    with pytest.raises(PermanentEngineError, match="not a Telegram chat"):
        await engine.send(OutboundMessage("msg_w", "5511999999999@c.us", "text", "x"))
    with pytest.raises(UnsupportedMessageType, match="1 to 4096"):
        await engine.send(out("text", text="x" * 4097))
    assert len([c for c in telegram.calls[calls:] if c.method != "getUpdates"]) == 0


async def test_flood_control_is_transient_and_says_how_long_to_wait(
    telegram: FakeTelegram, engine: TelegramEngine
) -> None:
    telegram.flood("sendMessage", retry_after=7)
    with pytest.raises(TransientEngineError) as raised:
        await engine.send(out("text", text="rápido demais"))
    assert raised.value.retry_after_seconds == 7
    assert "retry after 7" in str(raised.value)
    telegram.fail_next("sendMessage", 502, "Bad Gateway")
    with pytest.raises(TransientEngineError) as down:
        await engine.send(out("text", text="de novo"))
    assert down.value.retry_after_seconds is None


async def test_a_chat_not_found_or_a_blocked_bot_fails_the_message_with_telegrams_words(
    telegram: FakeTelegram, engine: TelegramEngine
) -> None:
    telegram.missing_chats.add(CHAT)
    with pytest.raises(PermanentEngineError, match="Bad Request: chat not found") as missing:
        await engine.send(out("text", text="alô"))
    assert not missing.value.transient
    telegram.missing_chats.clear()
    telegram.blocked.add(CHAT)
    with pytest.raises(PermanentEngineError, match="Forbidden: bot was blocked by the user"):
        await engine.send(out("text", text="alô"))


async def test_a_token_revoked_meanwhile_fails_the_session_and_keeps_the_message(
    telegram: FakeTelegram, engine: TelegramEngine, sink: RecordingSink
) -> None:
    telegram.fail_next("sendMessage", 401, "Unauthorized")
    with pytest.raises(EngineNotReady, match="401"):
        await engine.send(out("text", text="alô"))
    failed = await sink.wait_for(is_status(SessionStatus.FAILED))
    assert failed.value[1] == "Telegram error 401: Unauthorized"


async def test_edit_revoke_and_presence(telegram: FakeTelegram, engine: TelegramEngine) -> None:
    mine = (await engine.send(out("text", text="antes"))).engine_message_id
    await engine.edit(f"{CHAT}@telegram", mine, "depois")
    assert last(telegram).params == {"chat_id": CHAT, "message_id": 1, "text": "depois"}
    await engine.presence(f"{CHAT}@telegram", Presence.TYPING)
    assert last(telegram).params == {"chat_id": CHAT, "action": "typing"}
    await engine.revoke(f"{CHAT}@telegram", mine)
    assert (last(telegram).method, last(telegram).params) == (
        "deleteMessage",
        {"chat_id": CHAT, "message_id": 1},
    )
