"""A real server with an SMS session against the fake Twilio API, which calls back on the
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
from tests.support.fake_twilio import FakeTwilio, running
from zapgate.config import Settings

SESSION = "sms-br"
PEER = "+5511988887777"


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, webhook_allowlist="127.0.0.1")


@dataclass
class Sms:
    """The fake Twilio account, and the session that uses it."""

    fake: FakeTwilio
    session: str
    callback_url: str

    @property
    def callback_path(self) -> str:
        return "/api/v1/" + self.callback_url.split("/api/v1/", 1)[1]


def config_for(fake: FakeTwilio, public_url: str | None, **overrides: Any) -> dict[str, Any]:
    config = {
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "from": fake.number,
        "api_base": fake.url,
        "health_seconds": 1,
        **overrides,
    }
    if public_url is not None:
        config["public_url"] = public_url
    return config


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with running() as fake:
        yield fake
    assert fake.problems == [], "zapgate sent what Twilio would refuse"


async def create_session(
    server: RunningServer,
    api: httpx.AsyncClient,
    fake: FakeTwilio,
    name: str = SESSION,
    **extra: Any,
) -> Sms:
    """An SMS session, WORKING, whose number's inbound webhook is its callback URL."""
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post(
            "/api/v1/sessions",
            json={"name": name, "engine": "sms", "config": config_for(fake, server.url, **extra)},
        )
        assert created.status_code == 201, created.text
        await watcher.wait_for(status_is(name, "WORKING"))
    url = f"{server.url}/api/v1/sms/default/{name}/webhook"
    fake.inbound_url = url
    return Sms(fake, name, url)


@pytest.fixture
async def sms(server: RunningServer, api: httpx.AsyncClient, twilio: FakeTwilio) -> Sms:
    return await create_session(server, api, twilio)
