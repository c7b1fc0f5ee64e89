"""A zapgate server as a real subprocess (``python -m zapgate serve``), for crash tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

NO_PACING = {
    "ZAPGATE_SEND_RATE_PER_SECOND": "0",
    "ZAPGATE_SEND_RECIPIENT_SPACING_SECONDS": "0",
    "ZAPGATE_SEND_JITTER_SECONDS": "0",
}


NO_RATE_LIMITS = {"ZAPGATE_RATE_LIMIT_PER_KEY": "0", "ZAPGATE_AUTH_FAILURES_PER_MINUTE": "0"}
"""Like the in-process test servers: tests fire requests faster than any client should."""


class ServerProcess:
    """Start, kill -9 and restart a server on a fixed data directory and port."""

    def __init__(self, data_dir: Path, port: int, key: str | None, **env: str) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("ZAPGATE_")}
        self._env = {
            **inherited,
            "ZAPGATE_DATA_DIR": str(data_dir),
            "ZAPGATE_PORT": str(port),
            "ZAPGATE_LOG_LEVEL": "warning",
            **NO_PACING,
            **NO_RATE_LIMITS,
            **({"ZAPGATE_API_KEY": key} if key else {}),
            **env,
        }
        self._process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "server.log"

    def start(self, **env: str) -> None:
        """Start and wait until ``/ready`` answers 200."""
        data_log = self.log.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "zapgate", "serve"],
            env={**self._env, **env},
            stdout=data_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server not ready: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL, no chance to flush or clean up."""
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(10)
            self._process = None

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets and memory but runs nothing until ``resume``."""
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited (a paused one is running)."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
        self._process = None
