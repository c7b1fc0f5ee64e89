"""A real server whose webhooks, bots and Chatwoot may be on 127.0.0.1 (the local fakes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_settings
from zapgate.config import Settings


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        webhook_allowlist="127.0.0.1",
        media_url_allowlist="127.0.0.1",
        sink_retry_schedule=(0, 0.2, 0.5),
    )
