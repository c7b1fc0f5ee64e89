"""The Telegram engine on its own, against the fake Bot API: WORKING once getMe answers (``me``
from it), FAILED on a refused token, DISCONNECTED while Telegram cannot be reached and back by
itself; polling confirms an update only once it is recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.fake_telegram import Call, FakeTelegram
from tests.support.sink import RecordingSink, is_status
from tests.telegram.conftest import config_for, eventually
from zapgate.clock import SystemClock
from zapgate.engines.base import InboundMessage, SessionConfig, SessionStatus
from zapgate.engines.telegram.config import derived_secret
from zapgate.engines.telegram.engine import TelegramEngine
from zapgate.webhooks.ssrf import Allowlist


def new_engine() -> TelegramEngine:
    return TelegramEngine(Allowlist.parse("127.0.0.1"), SystemClock(), 1024 * 1024)


@pytest.fixture
async def started(telegram: FakeTelegram) -> AsyncIterator[tuple[TelegramEngine, RecordingSink]]:
    engine, sink = new_engine(), RecordingSink()
    await engine.start(SessionConfig("default", "bot", config_for(telegram)), sink)
    try:
        yield engine, sink
    finally:
        await engine.stop()


async def test_a_polling_session_works_once_get_me_answers(
    telegram: FakeTelegram, started: tuple[TelegramEngine, RecordingSink]
) -> None:
    _, sink = started
    await sink.wait_for(is_status(SessionStatus.WORKING))
    me = next(r.value for r in sink.reports if r.kind == "me")
    assert me == {"id": str(telegram.bot_id), "username": telegram.username, "name": "Zapgate Test"}
    assert sink.statuses() == [SessionStatus.STARTING, SessionStatus.WORKING]
    assert [c.method for c in telegram.calls[:2]] == ["getMe", "deleteWebhook"]
    assert telegram.calls[1].params == {"drop_pending_updates": False}
    poll = (await _first_poll(telegram)).params
    assert poll["timeout"] == 1
    assert "message_reaction" in poll["allowed_updates"]  # only sent when asked for by name


async def test_a_refused_token_fails_the_session_with_telegrams_reason(
    telegram: FakeTelegram,
) -> None:
    engine, sink = new_engine(), RecordingSink()
    config = config_for(telegram, bot_token=f"{telegram.bot_id}:{'x' * 35}")
    await engine.start(SessionConfig("default", "bot", config), sink)
    try:
        failed = await sink.wait_for(is_status(SessionStatus.FAILED))
        assert failed.value[1] == "Telegram error 401: Unauthorized"
        assert SessionStatus.WORKING not in sink.statuses()
        assert "me" not in [r.kind for r in sink.reports]
    finally:
        await engine.stop()


async def test_an_unreachable_telegram_is_disconnected_then_back_by_itself(
    telegram: FakeTelegram,
) -> None:
    telegram.outage = True
    engine, sink = new_engine(), RecordingSink()
    await engine.start(SessionConfig("default", "bot", config_for(telegram)), sink)
    try:
        down = await sink.wait_for(is_status(SessionStatus.DISCONNECTED))
        assert "502" in (down.value[1] or "")
        telegram.outage = False
        await sink.wait_for(is_status(SessionStatus.WORKING))
        telegram.disconnect(3)  # the long poll fails: reconnects, and works again
        position = len(sink.reports)
        await sink.wait_for(is_status(SessionStatus.DISCONNECTED))
        await sink.wait_for(
            lambda r: is_status(SessionStatus.WORKING)(r) and r in sink.reports[position:]
        )
    finally:
        await engine.stop()
    assert sink.statuses()[-2:] == [SessionStatus.DISCONNECTED, SessionStatus.WORKING]


async def test_an_update_is_confirmed_only_once_it_is_recorded(telegram: FakeTelegram) -> None:
    class FailingOnce(RecordingSink):
        failed = False

        async def message(self, message: InboundMessage) -> str:
            if not self.failed:
                self.failed = True
                raise RuntimeError("the database is away")
            return await super().message(message)

    engine, sink = new_engine(), FailingOnce()
    await engine.start(SessionConfig("default", "bot", config_for(telegram)), sink)
    try:
        await sink.wait_for(is_status(SessionStatus.WORKING))
        update = telegram.update(message=telegram.user_message(42, text="first"))
        telegram.queue(update)
        got = (await sink.wait_for(lambda r: r.kind == "message")).value
        assert (got.text, got.engine_message_id, got.once) == ("first", "42:1", True)
        assert sink.failed
        await _polled_past(telegram, update["update_id"])
        assert telegram.pending == []
    finally:
        await engine.stop()


async def test_received_messages_name_the_chat_and_keep_the_user(
    telegram: FakeTelegram, started: tuple[TelegramEngine, RecordingSink]
) -> None:
    _, sink = started
    await sink.wait_for(is_status(SessionStatus.WORKING))
    group = -1001234567890
    said = telegram.user_message(group, text="no grupo")
    telegram.queue(telegram.update(message=said))
    got: InboundMessage = (await sink.wait_for(lambda r: r.kind == "message")).value
    assert got.sender == f"{group}@telegram"
    assert got.recipient == f"{telegram.bot_id}@telegram"
    assert got.engine_message_id == f"{group}:1"
    assert got.raw is not None
    assert got.raw["user"] == {"id": 6_000_000_001, "username": "cliente1", "first_name": "Cliente"}
    assert got.timestamp_ms == said["date"] * 1000


async def test_edits_and_reactions_are_reported(
    telegram: FakeTelegram, started: tuple[TelegramEngine, RecordingSink]
) -> None:
    _, sink = started
    await sink.wait_for(is_status(SessionStatus.WORKING))
    said = telegram.user_message(42, text="antes")
    telegram.queue(telegram.update(message=said))
    edited = {**said, "text": "depois", "edit_date": said["date"] + 5}
    telegram.queue(telegram.update(edited_message=edited))
    telegram.queue(telegram.reaction_update(42, said["message_id"], ["🔥"]))
    telegram.queue(telegram.reaction_update(42, said["message_id"], [], old=["🔥"]))
    event = (await sink.wait_for(lambda r: r.kind == "event")).value
    assert (event.engine_message_id, event.text) == ("42:1", "depois")
    assert event.timestamp_ms == (said["date"] + 5) * 1000
    await sink.wait_for(lambda r: r.kind == "message" and r.value.emoji == "")
    reactions = [
        r.value for r in sink.reports if r.kind == "message" and r.value.kind == "reaction"
    ]
    assert [(r.target, r.emoji) for r in reactions] == [("42:1", "🔥"), ("42:1", "")]
    assert len({r.engine_message_id for r in reactions}) == 2


async def test_a_photo_comes_in_its_largest_size_and_a_too_large_file_is_noted(
    telegram: FakeTelegram,
) -> None:
    engine, sink = TelegramEngine(Allowlist.parse("127.0.0.1"), SystemClock(), 64), RecordingSink()
    await engine.start(SessionConfig("default", "bot", config_for(telegram)), sink)
    try:
        await sink.wait_for(is_status(SessionStatus.WORKING))
        photo = b"\x89PNG\r\n\x1a\n" + b"p" * 40
        sizes = telegram.photo_sizes(photo, "image/png")
        telegram.queue(telegram.update(message=telegram.user_message(42, photo=sizes)))
        big = telegram.file_object(b"d" * 100, "application/pdf", "documents", "big.pdf")
        telegram.queue(
            telegram.update(message=telegram.user_message(42, document=big, caption="grande"))
        )
        got = (await sink.wait_for(lambda r: r.kind == "message")).value
        assert got.media is not None
        assert (got.kind, got.media.data, got.media.mime_type) == ("image", photo, "image/png")
        late = await sink.wait_for(lambda r: r.kind == "message" and r.value.kind == "document")
        document: InboundMessage = late.value
        assert (document.media, document.text) == (None, "grande")
        assert document.raw is not None
        assert "larger than 64 bytes" in document.raw["media_error"]
    finally:
        await engine.stop()


async def _first_poll(telegram: FakeTelegram) -> Call:
    await eventually(lambda: bool(telegram.calls_of("getUpdates")))
    return telegram.calls_of("getUpdates")[0]


async def _polled_past(telegram: FakeTelegram, update_id: int) -> None:
    """Until a ``getUpdates`` confirmed ``update_id``."""

    def confirmed() -> bool:
        offsets = [c.params.get("offset") for c in telegram.calls_of("getUpdates")]
        return any(isinstance(o, int) and o > update_id for o in offsets)

    await eventually(confirmed)


async def test_a_webhook_session_sets_its_webhook_and_a_logout_deletes_it(
    telegram: FakeTelegram,
) -> None:
    engine, sink = new_engine(), RecordingSink()
    config = config_for(telegram, mode="webhook", public_url="https://zapgate.example.com/base/")
    await engine.start(SessionConfig("acme", "bot", config), sink)
    try:
        await sink.wait_for(is_status(SessionStatus.WORKING))
        assert telegram.webhook is not None
        assert (
            telegram.webhook.url
            == "https://zapgate.example.com/base/api/v1/telegram/acme/bot/webhook"
        )
        assert telegram.webhook.secret_token == derived_secret(telegram.token, "acme", "bot")
        await engine.logout()
        assert telegram.webhook is None
    finally:
        await engine.stop()


async def test_a_webhook_telegram_refuses_fails_the_session(telegram: FakeTelegram) -> None:
    telegram.fail_next("setWebhook", 400, "Bad Request: bad webhook: HTTPS url must be provided")
    engine, sink = new_engine(), RecordingSink()
    config = config_for(telegram, mode="webhook", public_url="http://zapgate.example.com")
    await engine.start(SessionConfig("default", "bot", config), sink)
    try:
        failed = await sink.wait_for(is_status(SessionStatus.FAILED))
        assert "bad webhook" in (failed.value[1] or "")
    finally:
        await engine.stop()
