"""Every route of the OpenAPI schema: no key is 401, and junk never gives a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningServer

OPEN = {
    "/health",
    "/ready",
    "/api/v1/media/{media_id}/content",
    "/api/v1/cloudapi/{tenant}/{session}/webhook",  # Meta's: signed, see tests/cloudapi
    "/api/v1/sms/{tenant}/{session}/webhook",  # the SMS provider's: signed, see tests/sms
    "/api/v1/telegram/{tenant}/{session}/webhook",  # Telegram's: its secret, see tests/telegram
    "/api/v1/chatwoot/{tenant}/{session}/webhook",  # Chatwoot's: its token, tests/integrations
    "/",  # the dashboard's page and files (tests/dashboard)
    "/dashboard",
    "/dashboard/assets/{name}",
}
"""No key needed: health, and signed media links (tests/media: 403 unless signed)."""
JUNK_BODIES: list[bytes] = [
    b"{",
    b"null",
    b"[]",
    b'{"x": 1}',
    b'"text"',
    b'{"to": null, "text": null, "name": null, "url": null, "since": null}',
    '{"name": "\u0000\u202e", "url": "http://\u00e9.example/"}'.encode(),
    b"\xff\xfe\x00",
]
JUNK_SEGMENTS = ["%00", "a" * 300, "..", "%2e%2e%2f", "<script>", "🙂", "default%20x"]


def operations(spec: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if path not in OPEN
    ]


def concrete(path: str, segment: str = "default") -> str:
    parts = [segment if p.startswith("{") else p for p in path.split("/")]
    return "/".join(parts)


async def test_every_route_declares_and_enforces_authentication(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    spec = (await api.get("/openapi.json")).json()
    ops = operations(spec)
    assert len(ops) >= 25
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        for method, path in ops:
            declared = spec["paths"][path][method.lower()]["responses"]
            assert "401" in declared, f"{method} {path} does not declare 401"
            response = await anonymous.request(method, concrete(path), json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize("body", JUNK_BODIES, ids=range(len(JUNK_BODIES)))
async def test_junk_bodies_never_give_a_500(api: httpx.AsyncClient, body: bytes) -> None:
    spec = (await api.get("/openapi.json")).json()
    for method, path in operations(spec):
        if method not in {"POST", "PATCH", "PUT"}:
            continue
        response = await api.request(
            method, concrete(path), content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code < 500, (method, path, response.text)
        if response.status_code >= 400:
            assert set(response.json()) == {"error", "detail"}, (method, path)


async def test_junk_path_segments_never_give_a_500(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    for method, path in operations(spec):
        if "{" not in path:
            continue
        for segment in JUNK_SEGMENTS:
            response = await api.request(method, concrete(path, segment), json={})
            assert response.status_code < 500, (method, path, segment, response.text)
            assert response.status_code != 200 or method == "GET", (method, path, segment)


async def test_browser_requests_get_cors_headers_on_the_send_routes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import AUTH, make_settings, serve
    from zapgate.services import build_services

    settings = make_settings(tmp_path, cors_origins="https://app.example.com")
    async with (
        serve(build_services(settings)) as server,
        httpx.AsyncClient(
            base_url=server.url, headers={**AUTH, "Origin": "https://app.example.com"}
        ) as browser,
    ):
        response = await browser.post(
            "/whatsapp/send", json={"number": "5511999999999", "message": "from a browser"}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://app.example.com"
