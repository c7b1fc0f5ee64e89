"""Fixtures for the Socket.IO tests: the Node harness, and a server on either store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import RunningServer, make_settings, require_service, serve
from tests.support.js_client import ensure_node_harness
from zapgate.services import build_services


@pytest.fixture(autouse=True)
def node_harness() -> None:
    """Every test here drives the real socket.io-client."""
    require_service(ensure_node_harness())


@pytest.fixture
async def backend_server(database: AsyncEngine, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A real uvicorn over ``database`` (SQLite or PostgreSQL, see the ``backend`` fixture)."""
    async with serve(build_services(make_settings(tmp_path), database)) as running:
        yield running
