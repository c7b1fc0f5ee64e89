"""Failed authentications have no tenant: they go to the operator's log, at most
ZAPGATE_AUDIT_AUTH_FAILURES_PER_MINUTE of them for the whole server, so no number of hostile
clients can flood the database. Those over the cap are counted, and the next entry says so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.audit.support import BAD_KEY, audit_log
from tests.conftest import AUTH, RunningServer, make_settings, serve
from zapgate.audit.model import AuditQuery, Result
from zapgate.audit.service import AuditService
from zapgate.services import Services, build_services


async def test_unknown_callers_are_recorded_up_to_the_cap(services: Services) -> None:
    now = [0.0]
    audit = AuditService(services.database, services.committer, "default", 3, lambda: now[0])
    recorded = [
        await audit.record_unknown("GET /api/v1/sessions", "sessions", 401, "192.0.2.7")
        for _ in range(5)
    ]
    assert [entry is not None for entry in recorded] == [True, True, True, False, False]
    assert audit.suppressed == 2
    now[0] += 20.0  # three a minute: one more after 20 s
    after = await audit.record_unknown("GET /api/v1/keys", "keys", 401, "192.0.2.7")
    assert after is not None
    assert after.detail == {"suppressed": 2}, "the next entry says how many were left out"
    assert await audit.record_unknown("GET /api/v1/keys", "keys", 401, None) is None
    stored = await audit.page(AuditQuery("default", 10))
    assert [(e.actor, e.result, e.detail) for e in stored] == [
        (None, Result.REFUSED, {"suppressed": 2}),
        *[(None, Result.REFUSED, None)] * 3,
    ]
    assert {e.address for e in stored} == {"192.0.2.7"}


@pytest.fixture
async def capped(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = make_settings(tmp_path, audit_auth_failures_per_minute=2)
    async with serve(build_services(settings)) as running:
        yield running


async def test_a_flood_of_bad_keys_writes_only_the_cap(capped: RunningServer) -> None:
    async with (
        httpx.AsyncClient(base_url=capped.url, headers=BAD_KEY) as bad,
        httpx.AsyncClient(base_url=capped.url, headers=AUTH) as api,
    ):
        for _ in range(6):
            assert (await bad.post("/api/v1/sessions", json={"name": "x"})).status_code == 401
        entries = await audit_log(api)
    assert [(e["actor"], e["action"], e["status"]) for e in entries] == [
        (None, "POST /api/v1/sessions", 401)
    ] * 2
    assert capped.services.audit.suppressed == 4
