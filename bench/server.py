"""Start a target server on 127.0.0.1, wait for readiness, always stop it."""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.targets import Request, Server

HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0


class BenchError(RuntimeError):
    """A benchmark step failed (server did not start, wrk failed, ...)."""


@dataclass(frozen=True)
class Running:
    """A started server process and where it listens."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path


def free_port() -> int:
    """Ask the kernel for a currently free TCP port on the loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def http_call(port: int, request: Request, timeout: float = 2.0) -> tuple[int, bytes]:
    """Send one request to the local server; return (status, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(request.method, request.path, request.body or None, request.headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def rss_kb(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB (``VmRSS`` in ``/proc/<pid>/status``)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        raise BenchError(f"cannot read the RSS of pid {pid}: {exc}") from exc
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS line in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far, all threads (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError as exc:
        raise BenchError(f"cannot read the CPU time of pid {pid}: {exc}") from exc
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_tail(path: Path, lines: int = 20) -> str:
    """Last lines of a server log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def wait_ready(running: Running, path: str, timeout: float = READY_TIMEOUT_S) -> None:
    """Poll ``GET path`` until it answers 200; raise if the server dies or times out."""
    probe = Request("GET", path, {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise BenchError(
                f"server exited with {running.process.returncode} before ready:\n"
                f"{log_tail(running.log_path)}"
            )
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_call(running.port, probe, timeout=1.0)[0] == 200:
                return
        time.sleep(0.1)
    raise BenchError(
        f"server not ready on GET {path} after {timeout:.0f}s:\n{log_tail(running.log_path)}"
    )


def stop(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_S) -> None:
    """Terminate the server's process group, then kill it after ``grace`` seconds."""
    if process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=grace)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the process group we created for the server (falls back to the pid)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        process.send_signal(sig)


@contextlib.contextmanager
def serve(
    server: Server, cwd: Path, log_path: Path, prefix: Sequence[str] = (), port: int | None = None
) -> Iterator[Running]:
    """Run ``server`` (under ``prefix``, e.g. taskset; on ``port`` or a free one) until the exit."""
    port = free_port() if port is None else port
    env = {**os.environ, **server.env}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*prefix, *server.argv(port)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: Ctrl-C is ours to handle
        )
    try:
        running = Running(process, port, log_path)
        wait_ready(running, server.ready_path)
        yield running
    finally:
        stop(process)
