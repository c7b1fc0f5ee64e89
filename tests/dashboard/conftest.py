"""The dashboard in Debian's Chromium, driven by Playwright, against a real server process.

Every page a test opens records its console errors and uncaught exceptions; a test fails if
there is any. Screenshots go to ``.artifacts/dashboard/`` (kept by CI as test artefacts).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, free_port, require_service
from tests.support.process import ServerProcess

CHROMIUM = os.environ.get("ZAPGATE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "dashboard"
SERVER_ENV = {
    "ZAPGATE_SIMULATOR_ACK_SECONDS": "0.6",  # each status shows long enough to be seen
    "ZAPGATE_WEBHOOK_ALLOWLIST": "127.0.0.1",
    "ZAPGATE_WEBHOOK_RETRY_SCHEDULE": "0,0.1",  # a failing delivery fails after two attempts
    "ZAPGATE_SINK_RETRY_SCHEDULE": "0,0.1",  # a bot's too
    "ZAPGATE_SINK_ALLOWLIST": "127.0.0.1",  # the local Redis
}

try:
    from playwright import sync_api as playwright_api
except ImportError:  # pragma: no cover (make test installs it)
    playwright_api = None
else:  # what the page shows comes through a server and a stream: give a loaded machine time
    playwright_api.expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("dashboard"), free_port(), ADMIN_KEY)
    process.start(**SERVER_ENV)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    require_service(None if playwright_api else "Playwright is missing (make test installs it)")
    require_service(None if os.access(CHROMIUM, os.X_OK) else f"no Chromium at {CHROMIUM}")
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Console:
    """What the page reported as going wrong."""

    errors: list[str] = field(default_factory=list)


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: object, server: ServerProcess, console: Console) -> Iterator[object]:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    opened = context.new_page()
    opened.on("console", lambda m: m.type == "error" and console.errors.append(m.text))
    opened.on("pageerror", lambda error: console.errors.append(str(error)))
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        context.close()
    assert console.errors == [], console.errors


def shot(page: object, name: str) -> Path:
    """A screenshot into the artefacts folder."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)  # type: ignore[attr-defined]
    return target


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 answering ``status`` (settable), counting requests."""

    status: int = 500
    received: int = 0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with state.lock:
                state.received += 1
                status = state.status
            body = b'{"ok": false, "why": "receiver down for maintenance"}'
            if status < 300:
                body = b'{"ok": true}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{http.server_address[1]}/hook"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        http.shutdown()
        http.server_close()
