"""Install, run and parse the ``wrk`` load generator."""

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.server import HOST, BenchError
from bench.targets import Request

LUA_SCRIPT = Path(__file__).with_name("post.lua")
FLOOD_SCRIPT = Path(__file__).with_name("flood.lua")
"""``post.lua`` plus a count of answers per status (slower per request; for the flood only)."""
CONNECTIONS = 50
THREADS = 1
SOCKET_ERROR_KINDS = ("connect", "read", "write", "timeout")

_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_LATENCY_RE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS_RE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_REQUESTS_RE = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.MULTILINE)
_NON_2XX_RE = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_RE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_STATUS_RE = re.compile(r"^Status (\d+): (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class WrkResult:
    """Figures parsed from one ``wrk --latency`` run."""

    requests_per_sec: float
    p50_ms: float
    p99_ms: float
    requests: int
    duration_s: float
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Non-2xx responses plus socket errors of every kind."""
        return self.non_2xx + sum(self.socket_errors.values())

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view, including the error total."""
        return {**asdict(self), "errors": self.errors}


def ensure_wrk() -> str:
    """Return the path of ``wrk``, installing the Debian package if missing."""
    found = shutil.which("wrk")
    if found:
        return found
    install = ["apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(install, check=False)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is not installed and `apt-get install -y wrk` failed")
    return found


def load_cpus() -> tuple[int, int] | None:
    """(server CPU, load generator CPU) when there are two CPUs to pin to, else None."""
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None or len(cpus) < 2:
        return None
    return cpus[0], cpus[1]


def cpu_prefixes() -> tuple[list[str], list[str]]:
    """``taskset`` prefixes pinning the server and wrk to separate CPUs, if possible."""
    taskset = shutil.which("taskset")
    cpus = load_cpus()
    if taskset is None or cpus is None:
        return [], []
    return [taskset, "-c", str(cpus[0])], [taskset, "-c", str(cpus[1])]


def request_env(request: Request) -> dict[str, str]:
    """Environment variables that ``post.lua`` turns into the wrk request."""
    headers = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
    return {
        "BENCH_METHOD": request.method,
        "BENCH_BODY_HEX": request.body.hex(),
        "BENCH_HEADERS": headers,
    }


def wrk_argv(
    wrk: str, port: int, request: Request, duration_s: int, prefix: list[str], script: Path
) -> list[str]:
    """The wrk command line for ``request`` against the local server."""
    return [
        *prefix, wrk,
        f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{duration_s}s",
        "--latency", "-s", str(script),
        f"http://{HOST}:{port}{request.path}",
    ]  # fmt: skip


def wrk_env(request: Request) -> dict[str, str]:
    """The process environment for wrk: ours, the request, and where ``post.lua`` is."""
    return {**os.environ, **request_env(request), "BENCH_POST_LUA": str(LUA_SCRIPT)}


def run_wrk(wrk: str, port: int, request: Request, duration_s: int, prefix: list[str]) -> str:
    """Run wrk against the local server for ``duration_s`` seconds; return its output."""
    argv = wrk_argv(wrk, port, request, duration_s, prefix, LUA_SCRIPT)
    try:
        proc = subprocess.run(
            argv,
            env=wrk_env(request),
            capture_output=True,
            text=True,
            timeout=duration_s + 30,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {exc.timeout:.0f}s") from exc
    if proc.returncode != 0:
        raise BenchError(f"wrk exited with {proc.returncode}:\n{proc.stderr}{proc.stdout}")
    return proc.stdout


def _to_ms(value: str, unit: str) -> float:
    """Convert a wrk duration (value + unit) to milliseconds."""
    return float(value) * _UNIT_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    """Parse ``wrk --latency`` output; raise :class:`BenchError` if it is incomplete."""
    latencies = {pct: _to_ms(v, u) for pct, v, u in _LATENCY_RE.findall(output)}
    rps = _RPS_RE.search(output)
    total = _REQUESTS_RE.search(output)
    if rps is None or total is None or set(latencies) != {"50", "99"}:
        raise BenchError(f"could not parse wrk output:\n{output}")
    non_2xx = _NON_2XX_RE.search(output)
    sockets = _SOCKET_RE.search(output)
    counts = [int(n) for n in sockets.groups()] if sockets else [0] * 4
    return WrkResult(
        requests_per_sec=float(rps.group(1)),
        p50_ms=latencies["50"],
        p99_ms=latencies["99"],
        requests=int(total.group(1)),
        duration_s=_to_ms(total.group(2), total.group(3)) / 1e3,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=dict(zip(SOCKET_ERROR_KINDS, counts, strict=True)),
    )


def parse_statuses(output: str) -> dict[int, int]:
    """Answers per HTTP status, from the ``Status <code>: <count>`` lines of ``flood.lua``."""
    counts: dict[int, int] = {}
    for status, count in _STATUS_RE.findall(output):
        counts[int(status)] = counts.get(int(status), 0) + int(count)
    return counts
