"""The whole media path over S3 (moto's server, the real S3 API): a file sent, echoed back,
served by id and by signed link, and gone with its tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.conftest import RunningServer, make_settings, serve
from tests.media.files import PDF, b64, png, sha
from tests.support.events import EventWatcher
from tests.support.s3 import CREDENTIALS, REGION, LocalS3, local_s3
from tests.support.tenants import tenant_key
from tests.test_messages_api import wait_working
from zapgate.services import build_services

SEND = "/api/v1/sessions/default/messages"
ECHO = "5511900000000"


@pytest.fixture(scope="module")
def s3() -> Iterator[LocalS3]:
    with local_s3() as running:
        yield running


@pytest.fixture
async def s3_server(s3: LocalS3, tmp_path) -> AsyncIterator[tuple[RunningServer, str]]:  # type: ignore[no-untyped-def]
    bucket = s3.new_bucket()
    settings = make_settings(
        tmp_path,
        media_store="s3",
        s3_bucket=bucket,
        s3_endpoint_url=s3.url,
        s3_region=REGION,
        s3_access_key_id=CREDENTIALS["aws_access_key_id"],
        s3_secret_access_key=CREDENTIALS["aws_secret_access_key"],
        s3_addressing_style="path",
        s3_prefix="zapgate",
    )
    async with serve(build_services(settings)) as running:
        yield running, bucket


async def test_files_go_through_s3_and_leave_with_their_tenant(
    s3: LocalS3, s3_server: tuple[RunningServer, str]
) -> None:
    server, bucket = s3_server
    await wait_working(server)
    image = png(30)
    headers = {"Authorization": f"Bearer {await tenant_key(server.services, 'default')}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as api:
        async with EventWatcher(server.services.bus) as watcher:
            sent = await api.post(
                SEND, json={"to": ECHO, "type": "image", "media": {"base64": b64(image)}}
            )
            assert sent.status_code == 202, sent.text
            echo = await watcher.wait_for(lambda e: e.type == "message.received")
        assert echo.payload["media"]["sha256"] == sha(image)
        assert (await api.get(f"/api/v1/media/{sent.json()['media']['id']}")).content == image
        async with httpx.AsyncClient() as anonymous:
            assert (await anonymous.get(server.url + echo.payload["media"]["url"])).content == image
    acme = {"Authorization": f"Bearer {await tenant_key(server.services, 'acme')}"}
    async with httpx.AsyncClient(base_url=server.url, headers=acme, timeout=10) as api:
        made = await api.post("/api/v1/sessions", json={"name": "s", "start": False})
        assert made.status_code == 201, made.text
        document = await api.post(
            "/api/v1/sessions/s/messages",
            files={"file": ("f.pdf", PDF)},
            data={"to": ECHO, "type": "document"},
        )
        assert document.status_code == 202, document.text  # queued: the file is stored now
    keys = {o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {f"zapgate/default/{sha(image)}", f"zapgate/acme/{sha(PDF)}"}
    await server.services.tenants.delete("acme")
    assert await server.services.tenants.wait_deleted("acme")
    keys = {o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {f"zapgate/default/{sha(image)}"}


async def test_an_s3_outage_is_a_503_and_received_messages_are_kept_without_their_file(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    with local_s3() as s3:
        bucket = s3.new_bucket()
        settings = make_settings(
            tmp_path,
            media_store="s3",
            s3_bucket=bucket,
            s3_endpoint_url=s3.url,
            s3_region=REGION,
            s3_access_key_id=CREDENTIALS["aws_access_key_id"],
            s3_secret_access_key=CREDENTIALS["aws_secret_access_key"],
            s3_addressing_style="path",
        )
        running = serve(build_services(settings))
        server = await running.__aenter__()
    try:  # the S3 server is gone from here on
        await wait_working(server)
        headers = {"Authorization": f"Bearer {await tenant_key(server.services, 'default')}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api:
            sent = await api.post(
                SEND, json={"to": ECHO, "type": "image", "media": {"base64": b64(png(31))}}
            )
            assert sent.status_code == 503, sent.text
            assert sent.json()["error"] == "unavailable"
            got = await api.post(
                "/api/v1/sessions/default/simulate/inbound",
                json={"from": ECHO, "type": "document", "media": {"base64": b64(PDF)}},
            )
            assert got.status_code == 201, got.text
            assert "media" not in got.json()
            assert "not available" in got.json()["media_error"]
    finally:
        await running.__aexit__(None, None, None)
