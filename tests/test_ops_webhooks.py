"""``zapgate webhooks retry`` and ``list``, run as an operator would against a running server: the
retry goes through its API, so its dispatcher sends the delivery again at once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import ADMIN_KEY, AUTH, free_port
from tests.support.process import ServerProcess
from tests.support.receiver import Receiver

pytestmark = pytest.mark.slow
T = TypeVar("T")
Completed = subprocess.CompletedProcess[str]
WRONG_KEY = "zg_wrongwrong0001_" + "w" * 32


async def zapgate(cwd: Path, *args: str, **env: str) -> Completed:
    """``python -m zapgate ARGS`` in ``cwd`` (no ``.env`` there) with only the ``ZAPGATE_*``
    variables given."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ZAPGATE_")}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "zapgate", *args],
        env={**inherited, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def webhooks(
    server: ServerProcess, *args: str, key: str | None = ADMIN_KEY, by_port: bool = False
) -> Awaitable[Completed]:
    """``zapgate webhooks ARGS`` against ``server``: its ``--url``, or with ``by_port`` the
    default URL of a machine whose ``ZAPGATE_PORT`` is the server's."""
    env = {"ZAPGATE_PORT": str(server.port)} if by_port else {}
    env |= {"ZAPGATE_API_KEY": key} if key else {}
    url = () if by_port else ("--url", server.url)
    return zapgate(server.data_dir, "webhooks", *args, *url, **env)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    running = ServerProcess(
        tmp_path,
        free_port(),
        ADMIN_KEY,
        ZAPGATE_WEBHOOK_ALLOWLIST="127.0.0.1",
        ZAPGATE_WEBHOOK_RETRY_SCHEDULE="0",  # one attempt, then the delivery has failed
        ZAPGATE_SIMULATOR_PAIRING_SECONDS="0",
    )
    await asyncio.to_thread(running.start)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 15) -> T:
    """Poll ``check`` (another process's state) until it answers something, within ``timeout``."""
    async with asyncio.timeout(timeout):
        while (found := await check()) is None:
            await asyncio.sleep(0.05)
        return found


async def deliveries(api: httpx.AsyncClient, hook: str, status: str) -> list[dict[str, Any]]:
    answer = await api.get(f"/api/v1/webhooks/{hook}/deliveries", params={"status": status})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


async def test_retry_failed_sends_them_again_through_the_running_server(
    server: ServerProcess, receiver: Receiver
) -> None:
    receiver.default = 500
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as api:
        body = {"url": receiver.url, "events": ["message.queued"]}
        hook = (await api.post("/api/v1/webhooks", json=body)).json()["id"]
        for text in ("one", "two"):
            sent = await api.post(
                "/api/v1/sessions/default/messages", json={"to": "5511999999999", "text": text}
            )
            assert sent.status_code == 202, sent.text

        async def both_failed() -> list[dict[str, Any]] | None:
            failed = await deliveries(api, hook, "failed")
            return failed if len(failed) == 2 else None

        failed = {found["id"] for found in await eventually(both_failed)}
        listed = await webhooks(server, "list")
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if hook in line)
        failing, pending, still_failed = (cell.strip() for cell in row.split("│")[-4:-1])
        assert (failing, pending, still_failed) == ("2", "0", "2")

        receiver.default = 200
        retried = await webhooks(server, "retry", hook, "--failed", by_port=True)
        assert retried.returncode == 0, retried.stderr
        assert f"Deliveries of {hook} retried (2 of 2)" in retried.stdout
        assert all(delivery_id in retried.stdout for delivery_id in failed)
        assert retried.stdout.count("retrying (pending)") == 2
        assert ADMIN_KEY not in retried.stdout + retried.stderr

        await receiver.wait_until(lambda r: len(r.successes()) == 2)

        async def both_delivered() -> set[str] | None:
            succeeded = {found["id"] for found in await deliveries(api, hook, "succeeded")}
            return succeeded if succeeded == failed else None

        await eventually(both_delivered)
        assert await deliveries(api, hook, "failed") == []
        nothing = await webhooks(server, "retry", hook, "--failed")
    assert (nothing.returncode, nothing.stdout.strip()) == (0, f"{hook} has no failed deliveries")


async def test_refusals_print_the_servers_message_and_exit_1(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as api:
        hook = (await api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x"})).json()

    bad_key = [("retry", hook["id"], "--failed"), ("retry", hook["id"], "dlv_x")]
    unknown, no_hook, keyless, *refused = await asyncio.gather(
        webhooks(server, "retry", hook["id"], "dlv_nope"),
        webhooks(server, "retry", "wh_nope", "--failed"),
        webhooks(server, "list", key=None),
        *(webhooks(server, *args, key=WRONG_KEY) for args in bad_key),
    )
    assert unknown.returncode == 1
    assert "404 no delivery 'dlv_nope'" in unknown.stdout
    assert "1 of 1 not retried" in unknown.stderr
    assert no_hook.returncode == 1
    assert "refused: 404 no webhook 'wh_nope'" in no_hook.stderr
    assert keyless.returncode == 2
    assert keyless.stderr.strip() == "no API key: give --key or set ZAPGATE_API_KEY"
    for args, answer in zip(bad_key, refused, strict=True):
        assert answer.returncode == 1, args
        assert "refused: 401 " in answer.stderr, args
        assert "Traceback" not in answer.stderr
        assert WRONG_KEY not in answer.stdout + answer.stderr


async def test_an_unreachable_server_is_said_plainly(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    dead = await zapgate(tmp_path, "webhooks", "list", "--url", nobody, "--key", "k" * 32)
    assert dead.returncode == 1
    assert dead.stderr.startswith(f"cannot reach zapgate at {nobody}: ")
