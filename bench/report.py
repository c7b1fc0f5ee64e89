"""Render results as a table and as JSON."""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import cluster, webhooks
from bench.cloudapi import CloudApiResult
from bench.cluster import ClusterResult
from bench.e2e import E2EResult
from bench.fanout import FanoutResult
from bench.history import HistoryResult
from bench.neighbours import MAX_RATIO, RAMP_S, Flood, NeighboursResult
from bench.sessions import SessionsResult
from bench.sinks import SinksResult
from bench.victim import GRACE_S
from bench.webhooks import WebhooksResult
from bench.wrkrun import WrkResult

RESULTS_DIR = Path(__file__).with_name("results")
LATEST = RESULTS_DIR / "latest.json"


Result = (
    WrkResult
    | SessionsResult
    | WebhooksResult
    | NeighboursResult
    | FanoutResult
    | HistoryResult
    | E2EResult
    | ClusterResult
    | CloudApiResult
    | SinksResult
)
"""What a measured workload or wrk target gives."""


@dataclass(frozen=True)
class Outcome:
    """A target's measurement, or why it could not be measured."""

    target: str
    result: Result | None = None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        """Measured, with no errors."""
        return self.result is not None and self.result.errors == 0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        data: dict[str, object] = {"target": self.target, "ok": self.ok}
        if self.result is not None:
            data.update(self.result.as_dict())
        if self.failure is not None:
            data["failure"] = self.failure
        return data


def throughput_ratio(outcomes: list[Outcome], num: str, den: str) -> float | None:
    """``num`` req/s divided by ``den`` req/s, when both were measured."""
    rps = {o.target: o.result.requests_per_sec for o in outcomes if isinstance(o.result, WrkResult)}
    if rps.get(num) is None or not rps.get(den):
        return None
    return rps[num] / rps[den]


def table(outcomes: list[Outcome]) -> str:
    """Fixed-width table of the wrk targets: target, req/s, p50 ms, p99 ms, errors."""
    lines = [f"{'target':<13} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>8}"]
    for o in outcomes:
        r = o.result
        if r is not None and not isinstance(r, WrkResult):
            continue
        if r is None:
            lines.append(f"{o.target:<13} {'FAILED':>10}")
            continue
        lines.append(
            f"{o.target:<13} {r.requests_per_sec:>10.1f} {r.p50_ms:>9.2f}"
            f" {r.p99_ms:>9.2f} {r.errors:>8d}"
        )
    return "\n".join(lines)


def sessions_section(result: SessionsResult) -> str:
    """The sessions workload's figures, one per line."""
    m, t = result.memory, result.traffic
    drain = f"drain {t.drain_s:.1f} s" + ("" if t.drained else ", NOT drained")
    rows = [
        ("RSS idle before", f"{m.rss_before_kb / 1024:.1f} MiB"),
        (f"RSS with {result.sessions} sessions", f"{m.rss_after_kb / 1024:.1f} MiB"),
        ("memory per idle session", f"{result.kb_per_session:.1f} KiB"),
        ("create + WORKING", f"{m.working_s:.1f} s (create {m.create_s:.1f} s)"),
        ("sends accepted/s", f"{result.sends_per_s:.1f} ({t.send_errors} errors)"),
        ("events/s during load", f"{result.events_per_s_load:.1f} ({t.load_s:.1f} s)"),
        ("events/s incl. drain", f"{result.events_per_s_with_drain:.1f} ({drain})"),
        ("RSS after load", f"{t.rss_after_load_kb / 1024:.1f} MiB"),
    ]
    if (r := result.restart) is not None:
        rows += [
            ("restart: ready", f"{r.restart_ready_s:.1f} s"),
            ("restart: all WORKING again", f"{r.restart_working_s:.1f} s"),
            ("restart: RSS", f"{r.restart_rss_kb / 1024:.1f} MiB"),
        ]
    return "\n".join(["sessions:", *(f"  {name:<28} {value}" for name, value in rows)])


def webhooks_section(result: WebhooksResult) -> str:
    """The webhooks workload's figures (its own rendering)."""
    return webhooks.section(result)


def neighbours_section(result: NeighboursResult) -> str:
    """B's figures idle vs. hostile with their ratios, then what A achieved, then the verdict."""
    lines = [
        f"neighbours (tenant B alone, then while tenant A attacks: {', '.join(result.attacks)}):",
        f"  {'B':<22} {'idle':>9} {'hostile':>9} {'ratio':>8}",
    ]
    for r in result.ratios():
        mark = ("PASS" if r.passed else "FAIL") if r.gated else ""
        ratio = "-" if r.ratio is None else f"{r.ratio:.1f}x"
        lines.append(
            f"  {r.name + ' ms':<22} {_ms(r.idle_ms):>9} {_ms(r.hostile_ms):>9} {ratio:>8}  {mark}"
        )
    i, h = result.idle, result.hostile
    for name, idle, hostile in (
        ("API", i.api, h.api),
        ("webhook lag", i.webhook_lag, h.webhook_lag),
        ("socket lag", i.socket_lag, h.socket_lag),
    ):
        lines.append(f"  {name + ' max ms':<22} {_ms(idle.at(100)):>9} {_ms(hostile.at(100)):>9}")
        counts = f"{idle.stalled}/{idle.count}", f"{hostile.stalled}/{hostile.count}"
        lines.append(f"  {name + ' stalled/n':<22} {counts[0]:>9} {counts[1]:>9}")
    ramp = result.ramp
    lines.append(
        f"  ramp-up (the attack's first {RAMP_S:.0f} s, not judged): API p99 "
        f"{_ms(ramp.api.at(99))} max {_ms(ramp.api.at(100))}, webhook lag p99 "
        f"{_ms(ramp.webhook_lag.at(99))}, socket lag p99 {_ms(ramp.socket_lag.at(99))} ms"
    )
    error = h.first_error or i.first_error
    lines += [
        f"  {'B errors':<22} {i.api_errors:>9} {h.api_errors:>9}" + (f"  {error}" if error else ""),
        *(f"  {line}" for line in attacker_lines(result)),
    ]
    lines.append(
        f"  (stalled: not answered or delivered {GRACE_S:.0f} s after the phase; counted at their "
        "wait so far)"
    )
    failed = result.failed_checks()
    verdict = f"PASS (every p99 within {MAX_RATIO:.0f}x of idle)" if result.passed else "FAIL"
    lines.append(f"  verdict: {verdict}" + (f": {'; '.join(failed)}" if failed else ""))
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    """Milliseconds for the table; ``-`` when there was no sample."""
    return "-" if value is None else f"{value:.1f}"


def attacker_lines(result: NeighboursResult) -> list[str]:
    """What tenant A achieved, one attack per line."""
    a = result.attacker
    if "failure" in a:
        return [f"A: {a['failure']}"]
    lines = []
    if "redos" in result.attacks:
        lines.append(f"A ReDoS session: {a.get('redos')}; its sends: {a.get('redos_sends')}")
    if "slow" in result.attacks:
        lines.append(
            f"A webhooks: {a.get('webhooks')}; slow receiver hit {a.get('slow_requests')}x, "
            f"dead one {a.get('dead_requests')}x; A's sends {a.get('producer')}"
        )
    replays = a.get("replays")
    if "replay" in result.attacks and isinstance(replays, dict):
        lines.append(
            f"A replays ({replays['clients']} sockets, offset 0, {result.history} events): "
            f"{replays['connects']} connects, {replays['completed']} complete, "
            f"{replays['resync_required']} resync_required, {replays['timed_out']} timed out, "
            f"{replays['interrupted']} cut by the phase's end, {replays['refused']} refused"
        )
    if result.flood is not None:
        lines.append(f"A flood (GET, wrk): {flood_line(result.flood)}")
    return lines


def flood_line(flood: Flood) -> str:
    """What the wrk flood got."""
    if flood.failure:
        return flood.failure
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted((flood.statuses or {}).items()))
    sockets = sum((flood.socket_errors or {}).values())
    return (
        f"{flood.requests} requests ({flood.requests_per_sec:.0f}/s), "
        f"{flood.rate_limited} answered 429 [{statuses}], {sockets} socket errors"
    )


def _error_detail(
    result: WrkResult
    | SessionsResult
    | WebhooksResult
    | FanoutResult
    | HistoryResult
    | E2EResult
    | ClusterResult
    | CloudApiResult
    | SinksResult,
) -> str:
    """What went wrong in a measured run."""
    if isinstance(result, SinksResult):
        return "; ".join(
            f"{name}: {max(0, result.stored - d.received)} missing, {d.duplicates} repeated, "
            f"{d.out_of_order} out of order"
            for name, d in (("rabbitmq", result.rabbitmq), ("webhook", result.webhook))
        )
    if isinstance(result, CloudApiResult):
        drained = "" if result.drained else "; the outbox did not drain"
        return (
            f"{result.refused} refused sends, {result.failed} failed, "
            f"{max(0, result.arrived - result.sent)} sent twice, busiest window "
            f"{result.busiest_window} for a setting of {result.rate_setting}{drained}"
        )
    if isinstance(result, ClusterResult):
        return cluster.error_detail(result)
    if isinstance(result, E2EResult):
        drained = "" if result.drained else "; the outbox did not drain"
        return f"{result.accepted.errors} refused sends, {result.failed} failed{drained}"
    if isinstance(result, FanoutResult):
        seen = [*result.original.errors_seen, *result.zapgate.errors_seen]
        return f"failed inbound posts or missing receipts; first errors: {seen[:3]}"
    if isinstance(result, HistoryResult):
        return "wrong or failed pages; see the history section"
    if isinstance(result, WebhooksResult):
        return webhooks_error_detail(result)
    if isinstance(result, SessionsResult):
        t = result.traffic
        drained = "" if t.drained else "; the outbox did not drain"
        return f"{t.send_errors} send errors{drained}; first: {t.first_error}"
    sockets = ", ".join(f"{k} {v}" for k, v in result.socket_errors.items())
    return f"non-2xx: {result.non_2xx}; socket: {sockets}"


def webhooks_error_detail(result: WebhooksResult) -> str:
    """What went wrong in a webhooks run."""
    return webhooks.error_detail(result)


def warn_failures(outcomes: list[Outcome]) -> None:
    """Print a loud banner for every failed or erroring target."""
    for o in outcomes:
        if o.ok:
            continue
        if o.result is None:
            detail = f"FAILED: {o.failure}"
        elif isinstance(o.result, NeighboursResult):
            detail = neighbours_detail(o.result)
        else:
            detail = (
                f"{o.result.errors} ERRORS ({_error_detail(o.result)}) -- figures are NOT valid"
            )
        bar = "!" * 72
        print(f"\n{bar}\n!!! {o.target}: {detail}\n{bar}", file=sys.stderr)


def neighbours_detail(result: NeighboursResult) -> str:
    """Why the noisy-neighbour workload did not pass."""
    checks = "; ".join(result.failed_checks())
    invalid = (
        f"; the idle phase had {result.idle_problems} errors or stalls: figures are NOT valid"
        if result.idle_problems
        else ""
    )
    return f"tenant B was not kept safe from tenant A: {checks or 'ok'}{invalid}"


def write_json(payload: dict[str, object], path: Path = LATEST) -> Path:
    """Write the results JSON (creating ``bench/results/``); return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return path


@dataclass(frozen=True)
class Row:
    """One line of the summary: a workload's figure against the original's and the target."""

    workload: str
    original: str
    zapgate: str
    ratio: str
    target: str
    met: bool | None


def _find(outcomes: list[Outcome], kind: type) -> object | None:
    for o in outcomes:
        if isinstance(o.result, kind):
            return o.result
    return None


def _wrk(outcomes: list[Outcome], name: str) -> WrkResult | None:
    for o in outcomes:
        if o.target == name and isinstance(o.result, WrkResult):
            return o.result
    return None


def _send_rows(outcomes: list[Outcome]) -> list[Row]:
    original, ours = _wrk(outcomes, "original"), _wrk(outcomes, "zapgate")
    if original is None or ours is None:
        return []
    ratio = ours.requests_per_sec / original.requests_per_sec
    return [
        Row(
            "send req/s (50 conns)",
            f"{original.requests_per_sec:,.0f}",
            f"{ours.requests_per_sec:,.0f}",
            f"{ratio:.2f}x",
            ">= 1.5x",
            ratio >= 1.5,
        ),
        Row(
            "send p99 ms",
            f"{original.p99_ms:.1f}",
            f"{ours.p99_ms:.1f}",
            f"{ours.p99_ms / original.p99_ms:.2f}x",
            "<= 1.0x",
            ours.p99_ms <= original.p99_ms,
        ),
        *_credential_rows(outcomes, ours),
    ]


CREDENTIALS = (
    ("zapgate-send-key", "send req/s, send-only key"),
    ("zapgate-jwt", "send req/s, JWT"),
)
"""Targets sending with other credentials than the admin key: what their checks cost."""


def _credential_rows(outcomes: list[Outcome], admin: WrkResult) -> list[Row]:
    """The send figure with each other credential, as a ratio to the admin key's (same run)."""
    rows = []
    for name, label in CREDENTIALS:
        other = _wrk(outcomes, name)
        if other is None:
            continue
        ratio = other.requests_per_sec / admin.requests_per_sec
        figures = f"{admin.requests_per_sec:,.0f} (admin)", f"{other.requests_per_sec:,.0f}"
        rows.append(Row(label, *figures, f"{ratio:.2f}x", ">= 0.95x", ratio >= 0.95))
    return rows


def _fanout_rows(result: FanoutResult) -> list[Row]:
    rows = []
    theirs, ours = result.original.phases.get("max"), result.zapgate.phases.get("max")
    if theirs and ours and theirs.events_per_s:
        ratio = ours.events_per_s / theirs.events_per_s
        figures = f"{theirs.events_per_s:,.0f}", f"{ours.events_per_s:,.0f}", f"{ratio:.2f}x"
        rows.append(Row("fan-out events/s, 100 clients", *figures, ">= 1.0x", ratio >= 1.0))
    theirs, ours = result.original.phases.get("paced"), result.zapgate.phases.get("paced")
    if theirs and ours and theirs.p99_ms and ours.p99_ms:
        ratio = ours.p99_ms / theirs.p99_ms
        rows.append(
            Row(
                "fan-out p99 ms at 500 msg/s",
                f"{theirs.p99_ms:.1f}",
                f"{ours.p99_ms:.1f}",
                f"{ratio:.2f}x",
                "<= 1.0x",
                ratio <= 1.0,
            )
        )
    return rows


def summary(outcomes: list[Outcome]) -> str:
    """Every workload in one table: the original's figure, zapgate's, the ratio, the target."""
    rows = _send_rows(outcomes)
    fan = _find(outcomes, FanoutResult)
    if isinstance(fan, FanoutResult):
        rows += _fanout_rows(fan)
    end = _find(outcomes, E2EResult)
    if isinstance(end, E2EResult):
        rows.append(
            Row(
                "e2e sends read/s",
                "-",
                f"{end.read_per_s:,.0f}",
                "-",
                ">= 5,000",
                end.read_per_s >= 5000,
            )
        )
    hist = _find(outcomes, HistoryResult)
    if isinstance(hist, HistoryResult):
        worst = hist.large.worst.pattern if hist.large.worst else "-"
        rows += [
            Row(
                f"history page p99 ms, {hist.large.messages:,} msgs",
                "-",
                f"{hist.large.page_p99_ms:.1f} ({worst})",
                "-",
                "<= 10",
                hist.p99_met,
            ),
            Row(
                "RSS large/small history",
                "-",
                f"{hist.large.rss_after_kb / 1024:.0f}/{hist.small.rss_after_kb / 1024:.0f} MiB",
                f"{hist.rss_ratio:.2f}x",
                "<= 1.2x",
                hist.rss_met,
            ),
        ]
    hooks = _find(outcomes, WebhooksResult)
    if isinstance(hooks, WebhooksResult):
        small = "" if hooks.target_shape else " (small)"
        live = f"{hooks.delivered_per_s:,.0f}"
        drain = f"{hooks.drain_per_s:,.0f}"
        rows += [
            Row(f"webhook deliveries/s, {hooks.subscriptions} subs{small}", "-", live, "-",
                ">= 5,000", hooks.live_met),
            Row(f"webhook drain/s, {hooks.backlog.expected:,} owed", "-", drain, "-",
                ">= 5,000", hooks.drain_met),
        ]  # fmt: skip
    sess = _find(outcomes, SessionsResult)
    if isinstance(sess, SessionsResult):
        per_session = sess.kb_per_session
        name = f"KiB per idle session ({sess.sessions:,})"
        rows.append(Row(name, "-", f"{per_session:.1f}", "-", "<= 50", per_session <= 50))
        working = sess.memory.working_s
        rows.append(
            Row(f"s until {sess.sessions:,} created are WORKING", "-", f"{working:.1f}", "-",
                "<= 30", working <= 30)
        )  # fmt: skip
        if (restart := sess.restart) is not None:
            again = restart.restart_working_s
            rows.append(
                Row(f"s from start until {sess.sessions:,} WORKING", "-", f"{again:.1f}", "-",
                    "<= 30", again <= 30)
            )  # fmt: skip
    header = (
        f"{'workload':<38} {'original':>10} {'zapgate':>22} {'ratio':>7} {'target':>9} {'met':>4}"
    )
    lines = ["summary (one core each, same run):", header]
    for r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        lines.append(
            f"{r.workload:<38} {r.original:>10} {r.zapgate:>22} {r.ratio:>7} {r.target:>9} {met:>4}"
        )
    return "\n".join(lines)
