"""The dashboard's weight and hygiene: under 300 KB compressed on first load, everything from
zapgate itself (no CDN), a strict Content-Security-Policy, cached by ETag."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx

from tests.support.process import ServerProcess
from zapgate.dashboard import assets

BUDGET_BYTES = 300 * 1024
HTM_PREACT_SHA256 = "72284e8e9079c87817145df1110f74e8a2aa040b2fc384922e18dfcb46fc1fd7"
ASSET = re.compile(r"""(?:src|href)="(/dashboard/assets/[^"]+)"|from '\./([^']+)'""")


def first_load(client: httpx.Client) -> dict[str, httpx.Response]:
    """The page and every file it pulls in (scripts import each other), fetched with gzip."""
    loaded = {"/": client.get("/", headers={"Accept-Encoding": "gzip"})}
    waiting = [loaded["/"].text]
    while waiting:
        for found in ASSET.finditer(waiting.pop()):
            url = found.group(1) or f"/dashboard/assets/{found.group(2)}"
            if url not in loaded:
                loaded[url] = client.get(url, headers={"Accept-Encoding": "gzip"})
                waiting.append(loaded[url].text)
    return loaded


def test_the_first_load_is_under_budget_and_all_from_zapgate(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as client:
        loaded = first_load(client)
    assert len(loaded) >= 8  # the page, its style sheet, the app's modules and Preact
    for url, response in loaded.items():
        assert response.status_code == 200, url
        assert response.headers["content-encoding"] == "gzip", url
        text = response.text.replace("http://www.w3.org/", "")  # XML namespaces, not fetched
        assert "https://" not in text, url
        assert "http://" not in text, url
    wire = sum(int(response.headers["content-length"]) for response in loaded.values())
    assert wire < BUDGET_BYTES, wire


def test_the_page_is_served_with_a_strict_policy_and_revalidated(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as client:
        for path in ("/", "/dashboard"):
            page = client.get(path)
            assert page.status_code == 200
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert 'id="app"' in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "'unsafe-inline'" not in policy
        assert page.headers["x-frame-options"] == "DENY"
        again = client.get("/dashboard/assets/app.js", headers={"If-None-Match": '"x"'})
        assert again.status_code == 200
        etag = again.headers["etag"]
        unchanged = client.get("/dashboard/assets/app.js", headers={"If-None-Match": etag})
        assert unchanged.status_code == 304
        assert not unchanged.content
        missing = client.get("/dashboard/assets/nothing.js")
        assert missing.status_code == 404
        assert missing.json()["error"] == "not_found"
        assert client.get("/dashboard/assets/index.html").status_code == 404
        assert client.get("/dashboard/assets/..%2fapi.py").status_code in (404, 422)


def test_the_vendored_preact_is_htm_3_1_1_unchanged() -> None:
    vendored = Path(assets.__file__).parent / "static" / "vendor" / "htm-preact.module.js"
    assert hashlib.sha256(vendored.read_bytes()).hexdigest() == HTM_PREACT_SHA256
