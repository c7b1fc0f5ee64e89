"""Command line: start each target, load it with wrk, report the figures."""

import argparse
import http.client
import os
import platform
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bench import report
from bench.server import BenchError, http_call, serve
from bench.targets import Target, build_targets
from bench.wrkrun import (
    CONNECTIONS,
    THREADS,
    WrkResult,
    cpu_prefixes,
    ensure_wrk,
    parse_wrk,
    run_wrk,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DURATION_S = 10
WARMUP_S = 2


@dataclass(frozen=True)
class Setup:
    """Everything a measurement needs besides the target."""

    wrk: str
    duration_s: int
    server_prefix: list[str]
    wrk_prefix: list[str]
    log_dir: Path


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    """Parse a positive integer (argparse type)."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse ``--only`` and ``--duration`` (default ``$BENCH_DURATION`` or 10)."""
    names = list(build_targets(Path(), ""))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", action="append", choices=names, help="run only this target (repeatable)"
    )
    parser.add_argument(
        "--duration",
        type=positive_int,
        default=os.environ.get("BENCH_DURATION", str(DEFAULT_DURATION_S)),  # argparse applies type
        help="measured seconds per target (env BENCH_DURATION, default 10)",
    )
    return parser.parse_args(argv)


def smoke_check(port: int, target: Target) -> None:
    """Send the request once; warn loudly if it does not answer 2xx."""
    try:
        status, body = http_call(port, target.request)
    except (OSError, http.client.HTTPException) as exc:
        log(f"!!! {target.name}: request failed: {exc!r}")
        return
    if not 200 <= status < 300:
        log(f"!!! {target.name}: request answered {status}: {body[:200]!r}")


def measure(target: Target, setup: Setup) -> WrkResult:
    """Start the target's server, warm it up, then measure it with wrk."""
    log(f"{target.name}: starting server")
    log_path = setup.log_dir / f"{target.name}.log"
    with serve(target.server, REPO_ROOT, log_path, setup.server_prefix) as running:
        smoke_check(running.port, target)
        log(f"{target.name}: warm-up {WARMUP_S}s")
        run_wrk(setup.wrk, running.port, target.request, WARMUP_S, setup.wrk_prefix)
        log(f"{target.name}: measuring {setup.duration_s}s")
        output = run_wrk(
            setup.wrk, running.port, target.request, setup.duration_s, setup.wrk_prefix
        )
    return parse_wrk(output)


def measure_all(targets: list[Target], setup: Setup) -> list[report.Outcome]:
    """Measure targets one after the other; a failure does not stop the rest."""
    outcomes = []
    for target in targets:
        try:
            outcomes.append(report.Outcome(target.name, result=measure(target, setup)))
        except BenchError as exc:
            outcomes.append(report.Outcome(target.name, failure=str(exc)))
    return outcomes


def payload(outcomes: list[report.Outcome], setup: Setup) -> dict[str, object]:
    """Build the JSON document written to ``bench/results/latest.json``."""
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "duration_s": setup.duration_s,
            "warmup_s": WARMUP_S,
            "connections": CONNECTIONS,
            "threads": THREADS,
            "server_prefix": setup.server_prefix,
            "wrk_prefix": setup.wrk_prefix,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "results": [o.as_dict() for o in outcomes],
        "ratio_zapgate_over_baseline": report.throughput_ratio(outcomes, "zapgate", "baseline"),
    }


def run(args: argparse.Namespace) -> int:
    """Run the selected targets; return 0 only if all ran without errors."""
    wrk = ensure_wrk()
    server_prefix, wrk_prefix = cpu_prefixes()
    with tempfile.TemporaryDirectory(prefix="zapgate-bench-") as tmp:
        data_dir = Path(tmp, "data")
        data_dir.mkdir()
        targets = build_targets(data_dir, secrets.token_urlsafe(32))
        chosen = [t for name, t in targets.items() if not args.only or name in args.only]
        setup = Setup(wrk, args.duration, server_prefix, wrk_prefix, Path(tmp))
        outcomes = measure_all(chosen, setup)
    print(report.table(outcomes))
    ratio = report.throughput_ratio(outcomes, "zapgate", "baseline")
    if ratio is not None:
        print(f"zapgate/baseline throughput: {ratio:.2f}x")
    log(f"results written to {report.write_json(payload(outcomes, setup))}")
    report.warn_failures(outcomes)
    return 0 if all(o.ok for o in outcomes) else 1


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so servers are stopped on the way out."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit code 0 ok, 1 failures/errors, 130 interrupted."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
