"""A real server with Telegram sessions against the fake Bot API (polling it, or called back on
the session's webhook)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, make_settings
from tests.support.events import EventWatcher, status_is
from tests.support.fake_telegram import FakeTelegram, running
from zapgate.config import Settings

SESSION = "bot"
SECRET = "my-webhook-secret_1"


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, webhook_allowlist="127.0.0.1")


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with running() as fake:
        yield fake
    assert fake.problems == [], "zapgate sent what Telegram would refuse"


def config_for(fake: FakeTelegram, **overrides: Any) -> dict[str, Any]:
    return {
        "bot_token": fake.token,
        "api_base": fake.url,
        "poll_timeout_seconds": 1,
        "health_seconds": 1,
        **overrides,
    }


def webhook_config(fake: FakeTelegram, server: RunningServer, **overrides: Any) -> dict[str, Any]:
    return config_for(fake, mode="webhook", public_url=server.url, secret_token=SECRET, **overrides)


async def create_session(
    server: RunningServer, api: httpx.AsyncClient, config: dict[str, Any], name: str = SESSION
) -> None:
    """A Telegram session with ``config``, WORKING."""
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post(
            "/api/v1/sessions", json={"name": name, "engine": "telegram", "config": config}
        )
        assert created.status_code == 201, created.text
        await watcher.wait_for(status_is(name, "WORKING"))


async def history(api: httpx.AsyncClient, name: str = SESSION) -> list[dict[str, Any]]:
    """The session's messages."""
    answer = await api.get(f"/api/v1/sessions/{name}/messages")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
