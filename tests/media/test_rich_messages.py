"""Every message type through the REST API on a real server: files in (base64, multipart, URL),
sniffed and stored, out again by id or signed link, and back from the simulator's echo."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from tests.conftest import RunningServer, free_port, make_settings
from tests.media.files import EXE, MP4, OGG, PDF, WEBP, b64, png, sha
from tests.support.events import EventWatcher, message_status
from tests.support.tenants import tenant_key
from tests.test_messages_api import wait_working

SEND = "/api/v1/sessions/default/messages"
ECHO = "5511900000000"  # the simulator's echo contact: sends back what it gets
TO = "5511999999999"


@pytest.fixture
def server_settings(tmp_path):  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, media_url_allowlist="127.0.0.1")


async def test_an_image_in_base64_is_stored_sent_and_served(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    image = png(1)
    async with EventWatcher(server.services.bus) as watcher:
        response = await api.post(
            SEND,
            json={
                "to": TO,
                "type": "image",
                "media": {"base64": b64(image), "filename": "foto.png"},
                "caption": "a foto",
            },
        )
        assert response.status_code == 202, response.text
        body = response.json()
        sent = await watcher.wait_for(message_status(body["id"], "sent"))
    assert body["type"] == "image"
    assert body["text"] == "a foto"
    media = body["media"]
    assert media["mime_type"] == "image/png"
    assert media["size"] == len(image)
    assert media["sha256"] == sha(image)
    assert media["filename"] == "foto.png"
    assert media["caption"] == "a foto"
    assert "url" not in media  # a REST answer; events carry a signed link
    assert sent.payload["media"]["url"].startswith("/api/v1/media/")
    got = await api.get(f"/api/v1/media/{media['id']}")
    assert got.status_code == 200
    assert got.content == image
    assert got.headers["content-type"] == "image/png"
    engine_got = server.services.sessions._running[("default", "default")].runner.engine
    assert engine_got.recent_sends[-1].media.data == image  # type: ignore[attr-defined]


async def test_the_echo_contact_sends_every_file_back_with_the_same_bytes(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    cases = [
        ("image", png(2), "image/png"),
        ("document", PDF, "application/pdf"),
        ("audio", OGG, "audio/ogg"),
        ("video", MP4, "video/mp4"),
        ("sticker", WEBP, "image/webp"),
    ]
    for kind, data, mime in cases:
        async with EventWatcher(server.services.bus) as watcher:
            sent = await api.post(
                SEND, json={"to": ECHO, "type": kind, "media": {"base64": b64(data)}}
            )
            assert sent.status_code == 202, sent.text
            echo = await watcher.wait_for(
                lambda e: e.type == "message.received" and e.payload["type"] == kind  # noqa: B023
            )
        media = echo.payload["media"]
        assert media["sha256"] == sha(data), kind
        assert media["mime_type"] == mime, kind
        link = await httpx.AsyncClient().get(server.url + media["url"])
        assert link.status_code == 200
        assert link.content == data


async def test_a_multipart_upload_is_sniffed_not_believed(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    response = await api.post(
        SEND,
        data={"to": TO, "type": "document", "caption": "the invoice"},
        files={"file": ("fatura.pdf", PDF, "image/jpeg")},
    )
    assert response.status_code == 202, response.text
    media = response.json()["media"]
    assert media["mime_type"] == "application/pdf"
    assert media["filename"] == "fatura.pdf"
    renamed = await api.post(
        SEND, data={"to": TO, "type": "image"}, files={"file": ("cat.jpg", EXE, "image/jpeg")}
    )
    assert renamed.status_code == 422, renamed.text
    assert renamed.json()["error"] == "media_rejected"
    as_document = await api.post(
        SEND, data={"to": TO, "type": "document"}, files={"file": ("cat.jpg", EXE, "image/jpeg")}
    )
    assert as_document.status_code == 202
    assert as_document.json()["media"]["mime_type"] == "application/x-msdownload"


async def test_the_same_bytes_are_stored_once(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    image = png(3)
    ids = set()
    for name in ("a.png", "b.png"):
        sent = await api.post(
            SEND,
            json={"to": TO, "type": "image", "media": {"base64": b64(image), "filename": name}},
        )
        assert sent.status_code == 202
        ids.add(sent.json()["media"]["id"])
        assert sent.json()["media"]["filename"] == name
    assert len(ids) == 1
    files = list((server.services.settings.data_dir / "media").rglob(sha(image)))
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o777 == 0o600


@pytest.fixture
async def files_server() -> AsyncIterator[str]:
    app = web.Application()

    async def picture(_request: web.Request) -> web.Response:
        return web.Response(body=png(4), content_type="text/html")

    async def gone(_request: web.Request) -> web.Response:
        return web.Response(status=404)

    app.router.add_get("/pic.png", picture)
    app.router.add_get("/gone", gone)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_file_is_fetched_by_url_through_the_ssrf_guard(
    server: RunningServer, api: httpx.AsyncClient, files_server: str
) -> None:
    await wait_working(server)
    fetched = await api.post(
        SEND, json={"to": TO, "type": "image", "media": {"url": f"{files_server}/pic.png"}}
    )
    assert fetched.status_code == 202, fetched.text
    assert fetched.json()["media"]["sha256"] == sha(png(4))
    assert fetched.json()["media"]["mime_type"] == "image/png"  # not the server's text/html
    assert fetched.json()["media"]["filename"] == "pic.png"
    missing = await api.post(
        SEND, json={"to": TO, "type": "image", "media": {"url": f"{files_server}/gone"}}
    )
    assert missing.status_code == 422
    for internal in ("http://10.0.0.1/x.png", "http://169.254.169.254/latest", "http://[::1]/"):
        refused = await api.post(SEND, json={"to": TO, "type": "image", "media": {"url": internal}})
        assert refused.status_code == 422, internal
        assert refused.json()["error"] == "media_rejected"


async def test_signed_links_work_until_they_expire_and_only_unaltered(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    sent = await api.post(SEND, json={"to": TO, "type": "image", "media": {"base64": b64(png(5))}})
    media_id = sent.json()["media"]["id"]
    made = await api.post(f"/api/v1/media/{media_id}/url", json={"expires_in": 60})
    assert made.status_code == 200
    link = made.json()
    assert link["url"].startswith(server.url)
    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(link["url"])).content == png(5)
        altered = link["url"].replace("expires=", "expires=9")
        assert (await anonymous.get(altered)).status_code == 403
        media = server.services.media
        assert media is not None
        past = media._links.path("default", media_id, int(time.time()) - 1)  # type: ignore[union-attr]
        expired = await anonymous.get(server.url + past)
        assert expired.status_code == 403
        assert expired.json()["error"] == "link_expired"
        assert (await anonymous.get(f"{server.url}/api/v1/media/{media_id}")).status_code == 401
    too_long = await api.post(f"/api/v1/media/{media_id}/url", json={"expires_in": 8 * 86_400})
    assert too_long.status_code == 422


async def test_another_tenants_media_is_not_found(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    sent = await api.post(SEND, json={"to": TO, "type": "image", "media": {"base64": b64(png(6))}})
    media_id = sent.json()["media"]["id"]
    key = await tenant_key(server.services, "acme")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}
    ) as other:
        assert (await other.get(f"/api/v1/media/{media_id}")).status_code == 404
        assert (await other.post(f"/api/v1/media/{media_id}/url")).status_code == 404


async def test_location_contact_reaction_and_reply_are_stored_and_linked(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    first = (await api.post(SEND, json={"to": TO, "text": "first"})).json()
    async with EventWatcher(server.services.bus) as watcher:
        await watcher.wait_for(message_status(first["id"], "sent"))
    place = await api.post(
        SEND,
        json={
            "to": TO,
            "type": "location",
            "latitude": -23.55,
            "longitude": -46.63,
            "name": "Sé",
            "reply_to": first["id"],
        },
    )
    assert place.status_code == 202, place.text
    assert place.json()["location"] == {
        "latitude": -23.55,
        "longitude": -46.63,
        "name": "Sé",
        "address": None,
    }
    assert place.json()["reply_to"] == first["id"]
    card = await api.post(
        SEND,
        json={
            "to": TO,
            "type": "contact",
            "contact": {"name": "Ana", "phones": ["+5511988887777"]},
        },
    )
    assert card.status_code == 202, card.text
    assert card.json()["contact"]["vcard"].startswith("BEGIN:VCARD")
    assert "waid=5511988887777" in card.json()["contact"]["vcard"]
    async with EventWatcher(server.services.bus) as watcher:
        reaction = await api.post(
            SEND, json={"to": TO, "type": "reaction", "message_id": first["id"], "emoji": "👍"}
        )
        assert reaction.status_code == 202, reaction.text
        await watcher.wait_for(message_status(reaction.json()["id"], "sent"))
    assert reaction.json()["message_id"] == first["id"]
    engine = server.services.sessions._running[("default", "default")].runner.engine
    sent = engine.recent_sends[-1]  # type: ignore[attr-defined]
    assert sent.kind == "reaction"
    assert sent.target == first["engine_message_id"] or sent.target.startswith("sim_")
    unknown = await api.post(
        SEND, json={"to": TO, "type": "reaction", "message_id": "msg_nope", "emoji": "👍"}
    )
    assert unknown.status_code == 404


async def test_an_engine_that_cannot_send_a_type_says_so(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    created = await api.post(
        "/api/v1/sessions",
        json={"name": "texts", "engine": "simulator", "config": {"types": ["text", "location"]}},
    )
    assert created.status_code == 201, created.text
    assert created.json()["capabilities"] == ["text", "location"]
    default = (await api.get("/api/v1/sessions/default")).json()
    assert default["capabilities"] == [
        "text",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "location",
        "contact",
        "reaction",
        "poll",
        "template",
        "interactive",
    ]
    refused = await api.post(
        "/api/v1/sessions/texts/messages",
        json={"to": TO, "type": "image", "media": {"base64": b64(png(7))}},
    )
    assert refused.status_code == 422
    assert refused.json()["error"] == "unsupported_message_type"
    assert "simulator" in refused.json()["detail"]


async def test_bad_media_input_is_a_clear_4xx(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    cases = [
        {"to": TO, "type": "image", "media": {"base64": "not base64!"}},
        {"to": TO, "type": "image", "media": {}},
        {"to": TO, "type": "image", "media": {"base64": b64(png()), "url": "https://x.com/a"}},
        {"to": TO, "type": "image", "media": {"url": "ftp://x.com/a.png"}},
        {"to": TO, "type": "location", "latitude": 91, "longitude": 0},
        {"to": TO, "type": "contact", "contact": {"name": "x"}},
        {"to": TO, "type": "nope"},
        {"to": TO, "type": "sticker", "media": {"base64": b64(PDF)}},
    ]
    for case in cases:
        answer = await api.post(SEND, json=case)
        assert answer.status_code == 422, (case, answer.text)
        assert answer.json()["error"] in ("invalid_input", "media_rejected"), answer.text
    big = b"\x00" * (server.services.settings.media_max_bytes + 1)
    too_big = await api.post(SEND, data={"to": TO, "type": "document"}, files={"file": ("x", big)})
    assert too_big.status_code == 413


async def test_inbound_rich_messages_are_stored_with_their_links(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    first = (await api.post(SEND, json={"to": TO, "text": "pergunta"})).json()
    async with EventWatcher(server.services.bus) as watcher:
        await watcher.wait_for(message_status(first["id"], "sent"))
    inbound = "/api/v1/sessions/default/simulate/inbound"
    got = await api.post(
        inbound,
        json={
            "from": TO,
            "type": "document",
            "media": {"base64": b64(PDF), "filename": "resposta.pdf"},
            "caption": "segue",
            "reply_to": first["id"],
        },
    )
    assert got.status_code == 201, got.text
    body = got.json()
    assert body["direction"] == "in"
    assert body["media"]["sha256"] == sha(PDF)
    assert body["media"]["filename"] == "resposta.pdf"
    assert body["reply_to"] == first["id"]
    assert body["text"] == "segue"
    reacted = await api.post(
        inbound, json={"from": TO, "type": "reaction", "message_id": first["id"], "emoji": "❤️"}
    )
    assert reacted.status_code == 201, reacted.text
    assert reacted.json()["message_id"] == first["id"]
    assert reacted.json()["emoji"] == "❤️"
    stored = (await api.get(f"/api/v1/messages/{body['id']}")).json()
    assert stored["media"] == body["media"]
    assert (await api.get(f"/api/v1/media/{body['media']['id']}")).content == PDF


async def test_files_replies_and_reactions_on_either_store(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await wait_working(any_server)
    image = png(8)
    async with EventWatcher(any_server.services.bus) as watcher:
        sent = await any_api.post(
            SEND,
            json={"to": ECHO, "type": "image", "media": {"base64": b64(image)}, "caption": "c"},
        )
        assert sent.status_code == 202, sent.text
        echo = await watcher.wait_for(
            lambda e: e.type == "message.received" and e.payload["type"] == "image"
        )
    assert echo.payload["media"]["sha256"] == sha(image)
    assert echo.payload["media"]["id"] == sent.json()["media"]["id"]  # the same bytes, once
    reply = await any_api.post(
        SEND, json={"to": ECHO, "text": "got it", "reply_to": echo.payload["id"]}
    )
    assert reply.status_code == 202, reply.text
    assert reply.json()["reply_to"] == echo.payload["id"]
    history = (await any_api.get(SEND, params={"limit": 10})).json()["data"]
    by_id = {m["id"]: m for m in history}
    assert by_id[echo.payload["id"]]["media"]["sha256"] == sha(image)
    assert by_id[reply.json()["id"]]["reply_to"] == echo.payload["id"]
    assert (await any_api.get(f"/api/v1/media/{echo.payload['media']['id']}")).content == image


async def test_a_text_with_a_link_asks_for_a_preview_unless_told_not_to(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await wait_working(server)
    engine = server.services.sessions._running[("default", "default")].runner.engine
    cases = [
        ({"text": "veja https://example.com"}, True),
        ({"text": "veja https://example.com", "link_preview": False}, False),
        ({"text": "sem link"}, False),
        ({"text": "sem link", "link_preview": True}, True),
    ]
    for n, (body, preview) in enumerate(cases):
        async with EventWatcher(server.services.bus) as watcher:  # one recipient each: no pacing
            sent = await api.post(SEND, json={"to": f"551198888000{n}", **body})
            assert sent.status_code == 202, sent.text
            await watcher.wait_for(message_status(sent.json()["id"], "sent"))
        last = engine.recent_sends[-1]  # type: ignore[attr-defined]
        assert last.id == sent.json()["id"]
        assert last.link_preview is preview, body
