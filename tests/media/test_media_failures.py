"""What goes wrong around files: refused sends leave nothing forever, a message being sent is
not cancelled, an internal address is not named, a card without a name is no 500."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import RunningServer, make_settings
from tests.media.files import b64, png, sha
from tests.media.test_media_sweep import back_date
from tests.realtime.support import until
from tests.support.events import EventWatcher, message_status
from tests.test_messages_api import wait_working
from zapgate.db.tables import media as media_table
from zapgate.media.model import store_key
from zapgate.media.service import UNUSED_GRACE_MS

SEND = "/api/v1/sessions/default/messages"
TO = "5511999999999"


@pytest.fixture
def server_settings(tmp_path):  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, max_queued_per_session=1)


async def test_a_refused_send_leaves_a_file_the_sweep_removes(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    created = await api.post("/api/v1/sessions", json={"name": "off", "start": False})
    assert created.status_code == 201, created.text
    first = await api.post("/api/v1/sessions/off/messages", json={"to": TO, "text": "fills it"})
    assert first.status_code == 202
    image = png(40)
    refused = await api.post(
        "/api/v1/sessions/off/messages",
        json={"to": TO, "type": "image", "media": {"base64": b64(image)}},
    )
    assert refused.status_code == 429, refused.text  # the outbox is full
    media = server.services.media
    assert media is not None
    key = store_key("default", sha(image))
    assert await media.store.exists(key)  # taken in before the refusal, and recorded
    assert await media.sweep("default") == 0
    async with server.services.database.connect() as connection:
        media_id = await connection.scalar(
            sa.select(media_table.c.id).where(media_table.c.sha256 == sha(image))
        )
    await back_date(server, str(media_id), UNUSED_GRACE_MS + 1000)
    assert await media.sweep("default") == 1
    assert not await media.store.exists(key)


async def test_a_message_being_sent_is_not_cancelled(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    slow = {"send_latency": {"kind": "fixed", "seconds": 2}, "pairing": "auto"}
    created = await api.post("/api/v1/sessions", json={"name": "slow", "config": slow})
    assert created.status_code == 201, created.text
    await wait_working(server, "slow")
    engine = server.services.sessions._running[("default", "slow")].runner.engine
    async with EventWatcher(server.services.bus) as watcher:
        sent = await api.post("/api/v1/sessions/slow/messages", json={"to": TO, "text": "x"})
        message_id = sent.json()["id"]
        await until(lambda: engine.sending > 0)  # type: ignore[attr-defined]  # in its latency
        refused = await api.delete(f"/api/v1/messages/{message_id}")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "message_not_revocable"
        await watcher.wait_for(message_status(message_id, "sent"))
    deleted = await api.delete(f"/api/v1/messages/{message_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "revoked"


async def test_an_internal_address_is_refused_without_naming_it(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    refused = await api.post(
        SEND, json={"to": TO, "type": "image", "media": {"url": "http://localhost.:9/x.png"}}
    )
    assert refused.status_code == 422, refused.text
    assert "127.0.0.1" not in refused.text


async def test_a_vcard_without_a_name_value_is_no_500(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    card = {"vcard": "BEGIN:VCARD\nFN\nTEL:+5511988887777\nEND:VCARD"}
    sent = await api.post(SEND, json={"to": TO, "type": "contact", "contact": card})
    assert sent.status_code == 202, sent.text
    assert sent.json()["contact"]["phones"] == ["+5511988887777"]
