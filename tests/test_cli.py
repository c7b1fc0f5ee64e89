"""The command line, run as a user would: serve (with the QR in the terminal), migrate, keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, free_port
from tests.support.process import ServerProcess
from zapgate.events.model import Event

pytestmark = pytest.mark.slow


def zapgate(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zapgate", *args],
        env={**os.environ, "ZAPGATE_DATA_DIR": str(data_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_prints_urls_and_the_qr_in_the_terminal(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, free_port(), ADMIN_KEY)
    try:
        server.start(ZAPGATE_SIMULATOR_PAIRING_SECONDS="60")
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as c:
            qr = c.get("/api/v1/sessions/default/qr").json()["qr"]
    finally:
        server.stop()
    output = server.log.read_text()
    assert f"zapgate is serving on {server.url}" in output
    assert f"API docs: {server.url}/docs" in output
    assert "Session 'default' is waiting for a scan" in output
    assert "█" in output or "▀" in output or "▄" in output
    assert qr not in output, "the raw QR content belongs in the picture, not in the log"


def test_first_start_generates_a_key_once(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path, free_port(), key=None)
    first.start()
    first.stop()
    output = first.log.read_text()
    key = next(line.strip() for line in output.splitlines() if line.strip().startswith("zg_"))
    first.start()
    try:
        with httpx.Client(base_url=first.url) as client:
            ok = client.get("/api/v1/sessions", headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200
    finally:
        first.stop()
    assert first.log.read_text().count("An admin API key was generated") == 1


def test_migrate_and_keys_create(tmp_path: Path) -> None:
    migrated = zapgate(tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in migrated.stdout
    typo = zapgate(tmp_path, "keys", "create", "--name", "ci", "--tenant", "acme")
    assert typo.returncode == 1, "a key for an unknown tenant must not create the tenant"
    assert "no tenant 'acme'" in typo.stderr
    made = zapgate(tmp_path, "tenants", "create", "acme")
    assert made.returncode == 0, made.stderr
    assert "acme  active" in made.stdout
    again = zapgate(tmp_path, "tenants", "create", "acme")
    assert again.returncode == 1
    assert "exists" in again.stderr
    created = zapgate(tmp_path, "keys", "create", "--name", "ci", "--tenant", "acme")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("zg_")
    reader = zapgate(tmp_path, "keys", "create", "--name", "dash", "--scopes", "read")
    assert reader.returncode == 0, reader.stderr
    wrong = zapgate(tmp_path, "keys", "create", "--name", "x", "--scopes", "root")
    assert wrong.returncode == 2
    assert "--scopes" in wrong.stderr
    server = ServerProcess(tmp_path, free_port(), ADMIN_KEY)
    try:
        server.start()
        with httpx.Client(base_url=server.url) as client:
            listed = client.get("/api/v1/sessions", headers={"Authorization": f"Bearer {key}"})
            as_reader = {"Authorization": f"Bearer {reader.stdout.strip()}"}
            read = client.get("/api/v1/sessions", headers=as_reader)
            refused = client.post("/api/v1/webhooks", headers=as_reader, json={})
    finally:
        server.stop()
    assert listed.status_code == 200
    assert listed.json() == [], "a key of tenant acme must not see the default tenant's sessions"
    assert (read.status_code, refused.status_code) == (200, 403), "a read key only reads"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ZAPGATE_AUTH": "off", "ZAPGATE_HOST": "0.0.0.0"}, "loopback"),
        ({"ZAPGATE_API_KEY": "k" * 31}, "at least 32"),
        ({"ZAPGATE_PORT": "99999"}, "ZAPGATE_PORT"),
        ({"ZAPGATE_DATABASE_URL": "mysql://x"}, "ZAPGATE_DATABASE_URL"),
    ],
)
def test_invalid_configuration_stops_with_a_clear_message(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = zapgate(tmp_path, "serve", **env)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert message in result.stderr


def test_configuration_errors_never_print_the_value_given(tmp_path: Path) -> None:
    secret = "zg_oops_tooShort"
    result = zapgate(tmp_path, "serve", ZAPGATE_API_KEY=secret[:12])
    assert result.returncode == 2
    assert "ZAPGATE_API_KEY" in result.stderr
    assert secret[:12] not in result.stderr + result.stdout


def test_only_the_operators_qr_codes_reach_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from zapgate.cli import _print_qr_codes
    from zapgate.events.model import EventDraft

    def qr(tenant: str) -> Event:
        return EventDraft(tenant, "s", "session.qr", {"qr": f"{tenant}-qr-content"}).placed(1)

    _print_qr_codes([qr("acme"), qr("default")])
    printed = capsys.readouterr().out
    assert "'s' is waiting for a scan" in printed
    assert printed.count("waiting for a scan") == 1, "another tenant's QR was printed"


def test_doctor_says_what_each_engine_needs(tmp_path: Path) -> None:
    result = zapgate(tmp_path, "doctor", ZAPGATE_WPPCONNECT_CHROMIUM=str(tmp_path / "nothing"))
    assert result.returncode == 0, result.stderr
    assert "simulator: ready" in result.stdout
    assert "wppconnect: NOT READY" in result.stdout
    assert "MISSING  chromium" in result.stdout
    assert "apt-get install -y chromium" in result.stdout
    assert "auto: would run the simulator" in result.stdout
    strict = zapgate(
        tmp_path,
        "doctor",
        ZAPGATE_WPPCONNECT_CHROMIUM=str(tmp_path / "nothing"),
        ZAPGATE_DEFAULT_ENGINE="wppconnect",
    )
    assert strict.returncode == 1


def test_tenant_limits_are_shown_set_and_reset_without_creating_tenants(tmp_path: Path) -> None:
    shown = zapgate(tmp_path, "tenants", "limits", "default")
    assert shown.returncode == 0, shown.stderr
    assert "sessions: 20" in shown.stdout
    changed = zapgate(
        tmp_path, "tenants", "limits", "default", "--sessions", "3", "--burst", "0", "--sinks", "2"
    )
    assert "sessions: 3" in changed.stdout
    assert "sinks: 2" in changed.stdout
    assert "burst: 0  (unlimited)" in changed.stdout
    unknown = zapgate(tmp_path, "tenants", "limits", "acme", "--sessions", "3")
    assert unknown.returncode == 1
    assert "no tenant 'acme'" in unknown.stderr
    reset = zapgate(tmp_path, "tenants", "limits", "default", "--reset")
    assert "sessions: 20" in reset.stdout
    assert "burst: 100" in reset.stdout
    assert "sinks: 10" in reset.stdout


def answer_within_a_second(client: httpx.Client, status: int) -> httpx.Response:
    """The server's answer once it is ``status``: a change made by another process reaches a
    running server through the database within a second (it looks every 0.25 s)."""
    deadline = time.monotonic() + 1.0
    while (response := client.get("/api/v1/sessions")).status_code != status:
        assert time.monotonic() < deadline, f"still {response.status_code} after a second"
    return response


def test_tenants_and_keys_commands_act_on_a_running_server(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, free_port(), ADMIN_KEY)
    try:
        server.start()
        assert zapgate(tmp_path, "tenants", "create", "acme", "--name", "ACME").returncode == 0
        made = zapgate(tmp_path, "keys", "create", "--tenant", "acme", "--scopes", "read")
        assert made.returncode == 0, made.stderr
        headers = {"Authorization": f"Bearer {made.stdout.strip()}"}
        with httpx.Client(base_url=server.url, headers=headers) as client:
            assert client.get("/api/v1/sessions").status_code == 200
            assert zapgate(tmp_path, "tenants", "suspend", "acme").returncode == 0
            refused = answer_within_a_second(client, 403)  # cached there: the signal counts
            assert refused.json()["error"] == "tenant_suspended"
            shown = zapgate(tmp_path, "tenants", "show", "acme")
            assert "acme  suspended" in shown.stdout
            assert zapgate(tmp_path, "tenants", "resume", "acme").returncode == 0
            answer_within_a_second(client, 200)
            listed = zapgate(tmp_path, "keys", "list", "--tenant", "acme")
            key_id = listed.stdout.split()[0]
            assert key_id.startswith("key_")
            assert "live" in listed.stdout
            revoked = zapgate(tmp_path, "keys", "revoke", key_id, "--tenant", "acme")
            assert revoked.returncode == 0, revoked.stderr
            answer_within_a_second(client, 401)
        unconfirmed = zapgate(tmp_path, "tenants", "delete", "acme")
        assert unconfirmed.returncode == 2
        deleted = zapgate(tmp_path, "tenants", "delete", "acme", "--confirm", "acme")
        assert deleted.returncode == 0, deleted.stderr
        gone = zapgate(tmp_path, "tenants", "show", "acme")
        assert (gone.returncode, "no tenant 'acme'" in gone.stderr) == (1, True)
        assert "default  active" in zapgate(tmp_path, "tenants", "list").stdout
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as c:
            entries = c.get("/api/v1/audit", params={"actor": "cli", "limit": 500}).json()["data"]
        actions = [entry["action"] for entry in reversed(entries)]
        commands = ["create", "suspend", "resume", "delete"]
        assert [a for a in actions if a.startswith("zapgate tenants")] == [
            f"zapgate tenants {command}" for command in commands
        ], "the operator's log keeps what the CLI did to tenants, the deletion too"
    finally:
        server.stop()


def test_operator_commands_show_a_running_servers_state(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, free_port(), ADMIN_KEY)
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        server.start(ZAPGATE_SIMULATOR_PAIRING_SECONDS="60", ZAPGATE_WEBHOOK_ALLOWLIST="127.0.0.1")
        with httpx.Client(base_url=server.url, headers=auth) as client:
            qr = client.get("/api/v1/sessions/default/qr").json()["qr"]
            made = client.post("/api/v1/sessions", json={"name": "idle", "start": False})
            assert made.status_code == 201
            for n in range(3):
                sent = client.post(
                    "/api/v1/sessions/idle/messages", json={"to": "5511999999999", "text": str(n)}
                )
                assert sent.status_code == 202
            hook = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
            assert hook.status_code == 201, hook.text
        status = zapgate(tmp_path, "status")
        assert status.returncode == 0, status.stderr
        rows = {  # by session name: │ tenant │ session │ engine │ status │ ...
            line.split("│")[2].strip(): line
            for line in status.stdout.splitlines()
            if line.startswith("│ default")
        }
        assert "SCAN_QR_CODE" in rows["default"]
        assert "STOPPED" in rows["idle"]
        assert rows["idle"].split("│")[6].strip() == "3"  # queued
        assert "http://127.0.0.1:9/hook" in status.stdout
        assert "active" in status.stdout

        drawn = zapgate(tmp_path, "sessions", "qr", "default")
        assert drawn.returncode == 0, drawn.stderr
        assert "█" in drawn.stdout or "▀" in drawn.stdout or "▄" in drawn.stdout
        assert qr not in drawn.stdout, "the picture, not the raw content"
        none = zapgate(tmp_path, "sessions", "qr", "idle")
        assert none.returncode == 1
        assert "STOPPED: no QR to scan" in none.stderr

        tail = zapgate(tmp_path, "events", "tail", "--no-follow", "--last", "50")
        assert tail.returncode == 0, tail.stderr
        types = [line.split()[3] for line in tail.stdout.splitlines()]
        assert types.count("message.queued") == 3
        assert "session.qr" in types
        follow = zapgate(tmp_path, "events", "tail", "--last", "3", "--count", "3", "--json")
        assert follow.returncode == 0, follow.stderr
        envelopes = [json.loads(line) for line in follow.stdout.splitlines()]
        assert len(envelopes) == 3
        assert [e["seq"] for e in envelopes] == sorted(e["seq"] for e in envelopes)
    finally:
        server.stop()
