"""Benchmark targets: which server to start and which request to send it.

A target is data: a server (command, environment, readiness path) plus one
request. New wrk workloads are new entries in :func:`build_targets`; the sessions, webhooks and
neighbours workloads (:mod:`bench.sessions`, :mod:`bench.webhooks`, :mod:`bench.neighbours`)
drive their own traffic and only borrow the servers described here.
"""

import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

PORT = "{port}"
"""Placeholder in :attr:`Server.command` replaced by the chosen free port."""

UVICORN_FLAGS = (
    "--loop", "uvloop", "--http", "httptools",
    "--no-access-log", "--log-level", "warning", "--workers", "1",
)  # fmt: skip


@dataclass(frozen=True)
class Server:
    """How to start a server and tell when it is ready."""

    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    ready_path: str = "/ready"

    def argv(self, port: int) -> list[str]:
        """Return the command with the port placeholder filled in."""
        return [arg.replace(PORT, str(port)) for arg in self.command]


@dataclass(frozen=True)
class Request:
    """One HTTP request replayed by wrk."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Target:
    """A named server + request pair to measure."""

    name: str
    server: Server
    request: Request


SEND_BODY = json.dumps(
    {"number": "5511999999999", "message": "Olá, mundo!"}, ensure_ascii=False
).encode("utf-8")


def send_request(api_key: str | None = None) -> Request:
    """``POST /whatsapp/send`` with a JSON body (and a bearer key if given)."""
    headers = {"Content-Type": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return Request("POST", "/whatsapp/send", headers, SEND_BODY)


def baseline_server() -> Server:
    """Describe the bare ASGI app under uvicorn with the real server's flags."""
    command = (sys.executable, "-m", "uvicorn", "bench.baseline_app:app",
               "--host", "127.0.0.1", "--port", PORT, *UVICORN_FLAGS)  # fmt: skip
    return Server(command=command)


NODE_DIR = Path(__file__).resolve().parent / "node"
"""The original Node backend (:file:`bench/node/server.js`), installed by ``make bench``."""


def original_server() -> Server:
    """The original backend: Express 4 + socket.io 4, messages in memory, no auth."""
    return Server(command=("node", str(NODE_DIR / "server.js"), "--port", PORT))


UNPACED = {
    "ZAPGATE_SEND_RATE_PER_SECOND": "0",
    "ZAPGATE_SEND_RECIPIENT_SPACING_SECONDS": "0",
    "ZAPGATE_SEND_JITTER_SECONDS": "0",
}
"""Pacing off: every accepted message is also sent, acknowledged twice and logged meanwhile."""

UNLIMITED = {
    "ZAPGATE_RATE_LIMIT_PER_KEY": "0",
    "ZAPGATE_MAX_CONCURRENT_REQUESTS_PER_KEY": "0",
    "ZAPGATE_MAX_SESSIONS_PER_TENANT": "0",
    "ZAPGATE_MAX_QUEUED_PER_SESSION": "0",
    "ZAPGATE_MAX_STREAMS_PER_KEY": "0",
}
"""Per-tenant limits off: the throughput targets measure one client as fast as it can go (the
neighbours workload keeps the product's defaults, since they are what it measures)."""


def zapgate_server(data_dir: Path, api_key: str, paced: bool = False) -> Server:
    """The real zapgate server with a fresh data dir and API key.

    ``paced`` keeps the production anti-ban pacing (1 send/s per session), so the figure is the
    accept path with the outbox draining at its paced rate; unpaced, the same core also sends,
    records and acknowledges every message as fast as it can (sustained end-to-end work).
    """
    command = (sys.executable, "-m", "zapgate", "serve",
               "--host", "127.0.0.1", "--port", PORT)  # fmt: skip
    env = {
        "ZAPGATE_DATA_DIR": str(data_dir),
        "ZAPGATE_API_KEY": api_key,
        "ZAPGATE_LOG_LEVEL": "warning",
        "ZAPGATE_TERMINAL_QR": "false",
        **UNLIMITED,
        **({} if paced else UNPACED),
    }
    return Server(command=command, env=env)


def jwt_server(data_dir: Path, api_key: str) -> Server:
    """The paced zapgate server, also accepting HS256 JWTs signed with ``JWT_SECRET``."""
    base = zapgate_server(data_dir, api_key, paced=True)
    return replace(base, env={**base.env, "ZAPGATE_JWT_SECRET": JWT_SECRET})


def sessions_server(data_dir: Path, api_key: str) -> Server:
    """The zapgate server for the sessions workload: no terminal QR, instant simulator pairing."""
    base = zapgate_server(data_dir, api_key)
    env = {**base.env, "ZAPGATE_SIMULATOR_PAIRING_SECONDS": "0"}
    return replace(base, env=env)


WEBHOOK_RETRY_SCHEDULE = ",".join(["0", *["1"] * 59])
"""A failed delivery is retried every second, so a backlog moves within ~1 s of the receiver's
return. Sixty attempts: with ten the head delivery gave up after ~9 s, shorter than the time to
store a 3000-event backlog (~12 s at ~250 events/s), and that event was never delivered."""


def webhooks_server(data_dir: Path, api_key: str) -> Server:
    """The zapgate server for the webhooks workload: loopback receivers allowed, fast retries."""
    base = sessions_server(data_dir, api_key)
    env = {
        **base.env,
        "ZAPGATE_WEBHOOK_ALLOWLIST": "127.0.0.1",
        "ZAPGATE_WEBHOOK_RETRY_SCHEDULE": WEBHOOK_RETRY_SCHEDULE,
        "ZAPGATE_SIMULATOR_ECHO_CONTACT": "",  # no echo replies: inbound events only
    }
    return replace(base, env=env)


def neighbours_server(data_dir: Path, api_key: str) -> Server:
    """The zapgate server for the noisy-neighbour workload: product defaults for every limit,
    pacing off, instant simulator pairing, loopback webhook receivers allowed."""
    base = sessions_server(data_dir, api_key)
    env = {k: v for k, v in base.env.items() if k not in UNLIMITED}
    return replace(base, env={**env, "ZAPGATE_WEBHOOK_ALLOWLIST": "127.0.0.1"})


def key_command(tenant: str, scopes: str = "admin") -> tuple[str, ...]:
    """``zapgate keys create`` for ``tenant`` (run with the server's environment, before it)."""
    return (
        sys.executable,
        "-m",
        "zapgate",
        "keys",
        "create",
        "--tenant",
        tenant,
        "--name",
        "bench",
        "--scopes",
        scopes,
    )


def tenant_command(tenant: str) -> tuple[str, ...]:
    """``zapgate tenants create`` for ``tenant`` (before ``key_command`` for a new tenant)."""
    return (sys.executable, "-m", "zapgate", "tenants", "create", tenant)


JWT_SECRET = "bench-jwt-secret-" + "0" * 32
"""The HS256 secret of the JWT target's server (a benchmark's, never a deployment's)."""
SEND_KEY = "zapgate-send-key"
"""The target sending with a key whose only scope is ``send`` (made before its server starts)."""


def bench_jwt() -> str:
    """An HS256 token for the default tenant with the ``send`` scope, valid for a day."""
    import jwt  # zapgate's own dependency

    claims = {
        "tenant": "default",
        "sub": "bench",
        "scope": "send",
        "exp": int(time.time()) + 86_400,
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def receiver_server(dump: Path, secret: str) -> Server:
    """The loopback webhook receiver (:mod:`bench.receiver`), dumping its records to ``dump``."""
    command = (sys.executable, "-m", "bench.receiver", "--port", PORT, "--dump", str(dump))
    return Server(command=command, env={"BENCH_WEBHOOK_SECRET": secret})


def build_targets(data_dir: Path, api_key: str) -> dict[str, Target]:
    """All known targets by name, in run order (baseline first)."""
    targets = [
        Target("baseline", baseline_server(), send_request(api_key)),
        Target("original", original_server(), send_request()),
        Target("zapgate", zapgate_server(data_dir, api_key, paced=True), send_request(api_key)),
        Target("zapgate-e2e", zapgate_server(data_dir, api_key), send_request(api_key)),
        Target(SEND_KEY, zapgate_server(data_dir, api_key, paced=True), send_request(api_key)),
        Target("zapgate-jwt", jwt_server(data_dir, api_key), send_request(bench_jwt())),
    ]
    return {target.name: target for target in targets}
