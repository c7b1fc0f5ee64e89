"""Changes made with the command line are audited too, with the actor ``cli``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import make_settings
from zapgate.audit import repository
from zapgate.audit.model import AuditEntry, AuditQuery
from zapgate.cli import app
from zapgate.db.database import create_engine


def entries_of(data_dir: Path, tenant: str) -> list[AuditEntry]:
    async def read() -> list[AuditEntry]:
        engine = create_engine(make_settings(data_dir))
        try:
            return await repository.page(engine, AuditQuery(tenant, 100))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_cli_changes_leave_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAPGATE_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--name", "ci", "--scopes", "send"])
    assert created.exit_code == 0, created.output
    limited = runner.invoke(app, ["tenants", "limits", "default", "--sessions", "5"])
    assert limited.exit_code == 0, limited.output
    shown = runner.invoke(app, ["tenants", "limits", "default"])
    assert shown.exit_code == 0, shown.output

    entries = entries_of(tmp_path, "default")
    assert [(e.actor, e.action, e.result.value, e.status) for e in entries] == [
        ("cli", "zapgate tenants limits", "ok", None),
        ("cli", "zapgate keys create", "ok", None),
    ], "showing the limits changes nothing"
    assert entries[0].target == "tenants/default"
    assert entries[0].detail == {"limits": {"sessions": 5}}
    assert str(entries[1].target).startswith("keys/key_")
