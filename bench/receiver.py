"""Loopback webhook receiver for the webhooks workload: answers 200 to every POST and tallies it.

Run as ``python -m bench.receiver --port N --dump PATH`` with the subscription's secret in
``BENCH_WEBHOOK_SECRET``. For every delivery it records the ``webhook-id``, the envelope's
``seq``, the receive time and the lag (receive time minus the envelope ``timestamp``) and
verifies the Standard Webhooks signature. ``GET /stats`` serves live counts; on SIGTERM every
record (and one sample body) is written to ``PATH`` as JSON, which :func:`load_dump` reads back.
"""

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
import uvloop
from aiohttp import web

from zapgate.webhooks import signing

SECRET_ENV = "BENCH_WEBHOOK_SECRET"
SHUTDOWN_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Record:
    """One delivery as received."""

    webhook_id: str
    seq: int
    received_at: float
    lag_s: float


@dataclass(frozen=True)
class Dump:
    """Everything one receiver process saw."""

    records: list[Record]
    verify_failures: int
    bad_bodies: int
    sample_body: bytes | None


@dataclass
class Tally:
    """The receiver's state (one per process)."""

    secret: str
    records: list[Record] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    verified: int = 0
    verify_failures: int = 0
    bad_bodies: int = 0
    sample_body: bytes | None = None

    def stats(self) -> dict[str, int]:
        """Live counts for ``GET /stats``."""
        return {
            "requests": len(self.records) + self.bad_bodies,
            "unique": len(self.ids),
            "verified": self.verified,
            "verify_failures": self.verify_failures,
            "bad_bodies": self.bad_bodies,
        }


def verify(tally: Tally, request: web.Request, body: bytes) -> None:
    """Check the delivery's signature, counting the outcome."""
    try:
        signing.verify(tally.secret, request.headers, body)
    except signing.SignatureError:
        tally.verify_failures += 1
    else:
        tally.verified += 1


def record(tally: Tally, webhook_id: str, body: bytes, received_at: float) -> None:
    """Parse the envelope and store the delivery, or count it as a bad body."""
    try:
        envelope = orjson.loads(body)
        created = datetime.fromisoformat(envelope["timestamp"]).timestamp()
        seq = int(envelope["seq"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        tally.bad_bodies += 1
        return
    tally.records.append(Record(webhook_id, seq, received_at, received_at - created))
    tally.ids.add(webhook_id)
    if tally.sample_body is None:
        tally.sample_body = body


def build_app(tally: Tally) -> web.Application:
    """The aiohttp app: ``POST /hook``, ``GET /stats``, ``GET /ready``."""

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        received_at = time.time()
        verify(tally, request, body)
        record(tally, request.headers.get(signing.ID_HEADER, ""), body, received_at)
        return web.Response(text="ok")

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(tally.stats())

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(text="ready")

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_get("/ready", ready)
    return app


def dump_payload(tally: Tally) -> dict[str, object]:
    """JSON-ready view of everything received."""
    sample = tally.sample_body.decode("utf-8", "replace") if tally.sample_body else None
    return {
        "records": [[r.webhook_id, r.seq, r.received_at, r.lag_s] for r in tally.records],
        "verify_failures": tally.verify_failures,
        "bad_bodies": tally.bad_bodies,
        "sample_body": sample,
    }


def load_dump(path: Path) -> Dump:
    """Read back what a stopped receiver wrote."""
    data = json.loads(path.read_text())
    records = [Record(str(i), int(s), float(t), float(lag)) for i, s, t, lag in data["records"]]
    sample = data["sample_body"]
    return Dump(
        records,
        int(data["verify_failures"]),
        int(data["bad_bodies"]),
        sample.encode("utf-8") if sample is not None else None,
    )


def main() -> None:
    """Serve on 127.0.0.1 until SIGTERM, then write the dump."""
    parser = argparse.ArgumentParser(prog="python -m bench.receiver", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dump", type=Path, required=True)
    args = parser.parse_args()
    tally = Tally(os.environ[SECRET_ENV])
    web.run_app(
        build_app(tally),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        loop=uvloop.new_event_loop(),
    )
    args.dump.write_text(json.dumps(dump_payload(tally)))


if __name__ == "__main__":
    main()
