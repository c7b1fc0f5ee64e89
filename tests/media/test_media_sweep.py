"""Files nothing uses, and files past a tenant's retention, are swept: record and bytes."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from tests.conftest import RunningServer
from tests.media.files import b64, png, sha
from tests.test_messages_api import wait_working
from zapgate.clock import now_ms
from zapgate.db.committer import UnitOfWork
from zapgate.db.tables import media as media_table
from zapgate.media import repository
from zapgate.media.model import store_key
from zapgate.media.service import DAY_MS, UNUSED_GRACE_MS

SEND = "/api/v1/sessions/default/messages"
TO = "5511999999999"


async def back_date(server: RunningServer, media_id: str, by_ms: int) -> None:
    async with server.services.database.begin() as connection:
        await connection.execute(
            sa.update(media_table)
            .where(media_table.c.id == media_id)
            .values(created_at=now_ms() - by_ms)
        )


async def test_a_file_past_the_tenants_retention_is_deleted_and_its_message_kept(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await wait_working(any_server)
    media = any_server.services.media
    assert media is not None
    kept_image, old_image = png(20), png(21)
    sent = {}
    for image in (kept_image, old_image):
        answer = await any_api.post(
            SEND, json={"to": TO, "type": "image", "media": {"base64": b64(image)}}
        )
        assert answer.status_code == 202, answer.text
        sent[sha(image)] = answer.json()
    old = sent[sha(old_image)]["media"]
    await back_date(any_server, old["id"], 3 * DAY_MS)
    assert await media.sweep("default") == 0  # kept for ever by default
    changed = await any_api.patch(
        "/api/v1/tenants/default", json={"limits": {"media_retention_days": 2}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["limits"]["media_retention_days"] == 2
    assert await media.sweep("default") == 1
    assert (await any_api.get(f"/api/v1/media/{old['id']}")).status_code == 404
    assert not await media.store.exists(store_key("default", old["sha256"]))
    message = (await any_api.get(f"/api/v1/messages/{sent[sha(old_image)]['id']}")).json()
    assert message["media"]["sha256"] == old["sha256"]  # the message still says what it was
    fresh = sent[sha(kept_image)]["media"]
    assert (await any_api.get(f"/api/v1/media/{fresh['id']}")).content == kept_image


async def test_a_file_no_message_uses_is_swept_after_the_grace_period(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    media = any_server.services.media
    assert media is not None
    data = png(22)
    draft = await media.ingest_bytes("default", data, "image", None, "x.png")

    async def record(unit: UnitOfWork) -> str:
        stored, _ = await repository.claim(unit.connection, "default", draft, now_ms())
        return stored.id

    media_id = await any_server.services.committer.run(record)
    assert await media.sweep("default") == 0  # within the grace period: a send may be racing
    await back_date(any_server, media_id, UNUSED_GRACE_MS + 1000)
    assert await media.sweep("default") == 1
    assert not await media.store.exists(store_key("default", sha(data)))
    again = await any_api.post(
        SEND, json={"to": TO, "type": "image", "media": {"base64": b64(data)}}
    )
    assert again.status_code == 202  # the same bytes again: stored anew
    assert (await any_api.get(f"/api/v1/media/{again.json()['media']['id']}")).content == data
