"""The bridge process wrapper, with a stand-in node script (no Chromium needed)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.support.procs import pids_mentioning
from zapgate.engines.wppconnect.rpc import BridgeProcess

pytestmark = pytest.mark.node

# Starts a grandchild in the bridge's process group (as Chromium is), says so, then idles.
STAND_IN = """
const { spawn } = require("child_process");
const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", "%s"], {
  stdio: "ignore",
});
process.stdout.write(JSON.stringify({ event: "child", data: { pid: child.pid } }) + "\\n");
setInterval(() => {}, 1000);
"""


async def test_cancelling_an_unstopped_bridge_kills_its_group_instead_of_hanging(
    tmp_path: Path,
) -> None:
    node = shutil.which("node")
    require_service(None if node else "node is not installed")
    assert node is not None
    marker = f"zapgate-bridge-stand-in-{tmp_path.name}"
    script = tmp_path / "bridge.cjs"
    script.write_text(STAND_IN % marker)
    started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def on_event(name: str, data: dict[str, Any]) -> None:
        if name == "child" and not started.done():
            started.set_result(data)

    bridge = BridgeProcess(node, script, on_event, label="stand-in")
    await bridge.spawn()
    async with asyncio.timeout(10):
        await started
    assert pids_mentioning(marker), "the stand-in's grandchild should be running"

    # What the event loop does at shutdown when nobody called terminate(): cancel the tasks.
    tasks = [t for t in asyncio.all_tasks() if t.get_name().endswith(":stand-in")]
    assert len(tasks) == 2
    for task in tasks:
        task.cancel()
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks, return_exceptions=True)

    assert bridge.exited.is_set()
    assert bridge.returncode is not None
    assert bridge.returncode < 0, "killed by a signal"
    async with asyncio.timeout(10):
        while pids_mentioning(marker):
            await asyncio.sleep(0.05)
