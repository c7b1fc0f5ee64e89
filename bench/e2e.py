"""The end-to-end workload: how many sends a core takes all the way to ``read``.

A fresh zapgate server with pacing off (CPU 0) takes ``POST /whatsapp/send`` from wrk (CPU 1)
for the measured duration; the simulator sends each message and acknowledges it twice
(``delivered``, ``read``), so every message makes four events (queued, sent, delivered, read),
each fanned out. When wrk stops the outbox still holds what the senders did not reach; the
workload waits until every accepted message is ``read`` and then reads the stored rows
(read-only, the file the server writes): messages read per second from the first accepted to
the last read, and the lag from acceptance to ``read`` (p50/p99).
"""

import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.server import BenchError, cpu_seconds, serve
from bench.targets import send_request, zapgate_server
from bench.wrkrun import WrkResult, parse_wrk, run_wrk

REPO_ROOT = Path(__file__).resolve().parent.parent
DRAIN_TIMEOUT_S = 300.0
POLL_S = 0.5
TARGET_PER_S = 5000.0
OPEN = ("queued", "sent", "delivered")


@dataclass(frozen=True)
class Plan:
    """What to run, where, and on which CPUs."""

    duration_s: int
    api_key: str
    log_dir: Path
    wrk: str
    server_prefix: list[str]
    wrk_prefix: list[str]


@dataclass(frozen=True)
class E2EResult:
    """Accepted sends, how many reached ``read``, and how fast."""

    accepted: WrkResult
    read: int
    failed: int
    drained: bool
    seconds: float
    lag_p50_ms: float
    lag_p99_ms: float
    cpu_ms_per_message: float

    @property
    def read_per_s(self) -> float:
        """Messages that reached ``read`` per second, first accepted to last read."""
        return self.read / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        """Refused sends, failed messages, and one if the outbox did not drain."""
        return self.accepted.errors + self.failed + (0 if self.drained else 1)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        return {
            **{k: v for k, v in asdict(self).items() if k != "accepted"},
            "accepted": self.accepted.as_dict(),
            "read_per_s": round(self.read_per_s, 1),
            "target_read_per_s": TARGET_PER_S,
            "errors": self.errors,
        }


def _counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        rows = connection.execute(
            "SELECT status, count(*) FROM messages WHERE direction = 'out' GROUP BY status"
        ).fetchall()
    return {str(status): int(count) for status, count in rows}


def _timings(database: Path) -> tuple[float, list[float]]:
    """Seconds from the first accepted send to the last ``read``, and every message's lag (ms)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        rows = connection.execute(
            "SELECT created_at, updated_at FROM messages"
            " WHERE direction = 'out' AND status = 'read'"
        ).fetchall()
    if not rows:
        return 0.0, []
    first = min(created for created, _ in rows)
    last = max(updated for _, updated in rows)
    return (last - first) / 1000, sorted(float(updated - created) for created, updated in rows)


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))]


def _wait_drained(database: Path) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if not any(_counts(database).get(status) for status in OPEN):
            return True
        time.sleep(POLL_S)
    return False


def run(plan: Plan) -> E2EResult:
    """Load a fresh server with sends, wait for every one to be read, read the figures."""
    data_dir = plan.log_dir / "e2e-data"
    data_dir.mkdir(exist_ok=True)
    request = send_request(plan.api_key)
    server = zapgate_server(data_dir, plan.api_key)
    log_path = plan.log_dir / "e2e.log"
    with serve(server, REPO_ROOT, log_path, plan.server_prefix) as running:
        database = data_dir / "zapgate.db"
        if not database.exists():
            raise BenchError(f"no database at {database}")
        cpu_before = cpu_seconds(running.process.pid)
        output = run_wrk(plan.wrk, running.port, request, plan.duration_s, plan.wrk_prefix)
        drained = _wait_drained(database)
        cpu = cpu_seconds(running.process.pid) - cpu_before
    accepted = parse_wrk(output)
    counts = _counts(database)
    seconds, lags = _timings(database)
    read = counts.get("read", 0)
    return E2EResult(
        accepted=accepted,
        read=read,
        failed=counts.get("failed", 0),
        drained=drained,
        seconds=seconds,
        lag_p50_ms=_percentile(lags, 50),
        lag_p99_ms=_percentile(lags, 99),
        cpu_ms_per_message=1000 * cpu / read if read else 0.0,
    )


def section(result: E2EResult) -> str:
    """The workload's figures, one per line."""
    met = "met" if result.read_per_s >= TARGET_PER_S else "NOT met"
    rows = [
        ("sends accepted", f"{result.accepted.requests} "
         f"({result.accepted.requests_per_sec:.0f}/s)"),
        ("reached read", f"{result.read} ({'drained' if result.drained else 'NOT drained'})"),
        ("read/s, first accept to last read", f"{result.read_per_s:.0f} (target >= "
         f"{TARGET_PER_S:.0f}: {met})"),
        ("accept -> read lag p50/p99", f"{result.lag_p50_ms:.0f} / {result.lag_p99_ms:.0f} ms"),
        ("server CPU per message", f"{result.cpu_ms_per_message:.2f} ms"),
    ]  # fmt: skip
    return "\n".join(["end-to-end sends:", *(f"  {name:<36} {value}" for name, value in rows)])
