"""A real server with a Cloud API session against the fake Graph API, which calls back on the
session's callback URL (signed, over HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, make_settings
from tests.support.events import EventWatcher, status_is
from tests.support.fake_graph import FakeGraph, running
from zapgate.config import Settings

SESSION = "meta"
VERIFY = "my-verify-token"


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, webhook_allowlist="127.0.0.1")


@dataclass
class Meta:
    """The fake Graph API, and the session that uses it."""

    fake: FakeGraph
    session: str
    callback_path: str

    def config(self, **overrides: Any) -> dict[str, Any]:
        return config_for(self.fake, **overrides)


def config_for(fake: FakeGraph, **overrides: Any) -> dict[str, Any]:
    return {
        "phone_number_id": fake.phone_number_id,
        "access_token": fake.access_token,
        "app_secret": fake.app_secret,
        "verify_token": VERIFY,
        "waba_id": fake.waba_id,
        "api_version": fake.version,
        "base_url": fake.url,
        "rate_per_second": 1000,
        "health_seconds": 1,
        **overrides,
    }


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with running() as fake:
        yield fake
    assert fake.problems == [], "zapgate sent what Meta would refuse"


async def create_session(
    server: RunningServer,
    api: httpx.AsyncClient,
    fake: FakeGraph,
    name: str = SESSION,
    **extra: Any,
) -> Meta:
    """A Cloud API session, WORKING, whose fake calls back on its callback URL."""
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post(
            "/api/v1/sessions",
            json={"name": name, "engine": "cloudapi", "config": config_for(fake, **extra)},
        )
        assert created.status_code == 201, created.text
        await watcher.wait_for(status_is(name, "WORKING"))
    path = f"/api/v1/cloudapi/default/{name}/webhook"
    fake.post_to(server.url + path)
    return Meta(fake, name, path)


@pytest.fixture
async def meta(server: RunningServer, api: httpx.AsyncClient, graph: FakeGraph) -> Meta:
    return await create_session(server, api, graph)
