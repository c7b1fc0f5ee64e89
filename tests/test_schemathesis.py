"""The published OpenAPI is the contract: schemathesis, every check and phase, finds no failure.

A real uvicorn on a SQLite file with the simulator, authenticated with a real key. Stateful
testing follows the schema's links (session create -> get/start/send..., send -> get message,
webhook create -> get/deliveries/...). Deterministic generation, so CI runs the same cases each
time. Failures that are not contract breaks are dropped, each with its reason, in
tests/schemathesis_hooks.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, make_settings, serve
from zapgate.services import build_services

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
CONFIG = Path(__file__).with_name("schemathesis.toml")
UNLIMITED = {
    "rate_limit_per_key": 0,
    "auth_failures_per_minute": 0,  # ignored_auth sends many requests without a valid key
    "max_sessions_per_tenant": 0,
    "max_webhooks_per_tenant": 0,
    "max_queued_per_session": 0,
    "max_streams_per_key": 0,
}
"""Limits off: schemathesis sends hundreds of requests a second with one key (429 is declared
on every authenticated route either way)."""
RUN_SECONDS = 240


def schemathesis_command(url: str) -> list[str]:
    """All checks, all phases, a bounded number of cases per operation, no randomness."""
    return [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {ADMIN_KEY}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--generation-deterministic",
        "--max-examples",
        "10",
        "--workers",
        "1",
        "--request-timeout",
        "15",
        "--no-color",
    ]


@pytest.mark.timeout(RUN_SECONDS + 60)
async def test_the_running_api_keeps_its_openapi_contract(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **UNLIMITED)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    async with serve(build_services(settings)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            spec = (await client.get("/openapi.json")).json()
        operations = [(m, p) for p, item in spec["paths"].items() for m in item]
        process = await asyncio.create_subprocess_exec(
            *schemathesis_command(server.url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
            env=env,
        )
        try:
            async with asyncio.timeout(RUN_SECONDS):
                output, _ = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-30_000:]
    tested = re.search(r"Tested: (\d+)", text)
    assert tested is not None, text[-30_000:]
    assert int(tested.group(1)) == len(operations), text[-30_000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in text, text[-30_000:]
