"""Behind a reverse proxy: client addresses come from ``X-Forwarded-For`` only when the peer is
one of ``ZAPGATE_TRUSTED_PROXIES``, so per-address limits count real clients, not the proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, free_port
from tests.support.process import ServerProcess
from zapgate.config import Settings

SEND = "/whatsapp/send"
WRONG = {"Authorization": "Bearer zg_wrong0000000_" + "x" * 32}


async def failures_from(url: str, address: str, times: int, send: bool) -> list[int]:
    """Statuses of ``times`` requests with a wrong key, said to come from ``address``: sends
    (the hot path's) or session lists (the framework's)."""
    headers = {**WRONG, "X-Forwarded-For": address}
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        if send:
            body = {"number": "5511999999999", "message": "x"}
            answers = [await client.post(SEND, headers=headers, json=body) for _ in range(times)]
        else:
            answers = [await client.get("/api/v1/sessions", headers=headers) for _ in range(times)]
    return [answer.status_code for answer in answers]


@pytest.mark.parametrize("send", [True, False], ids=["send", "list"])
@pytest.mark.parametrize("trusted", [True, False])
async def test_failed_authentications_count_per_forwarded_client_only_from_trusted_proxies(
    tmp_path: Path, trusted: bool, send: bool
) -> None:
    env = {"ZAPGATE_AUTH_FAILURES_PER_MINUTE": "2"}
    if trusted:
        env["ZAPGATE_TRUSTED_PROXIES"] = "127.0.0.0/8"
    server = ServerProcess(tmp_path, free_port(), ADMIN_KEY, **env)
    await asyncio.to_thread(server.start)
    try:
        assert await failures_from(server.url, "203.0.113.7", 3, send) == [401, 401, 429]
        other = await failures_from(server.url, "203.0.113.8", 1, send)
    finally:
        server.stop()
    if trusted:
        assert other == [401], "another client behind the proxy keeps its own budget"
    else:
        assert other == [429], "an untrusted X-Forwarded-For is ignored: same peer, same budget"


@pytest.mark.parametrize("value", ["*", "10.0.0.1/8", "proxy.local"])
def test_trusted_proxies_are_addresses_or_networks(value: str) -> None:
    with pytest.raises(ValueError, match="IP address or network"):
        Settings(trusted_proxies=value)  # type: ignore[arg-type]
