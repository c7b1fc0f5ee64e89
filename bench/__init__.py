"""Benchmark harness: zapgate vs. a bare ASGI baseline (wrk), then the sessions, webhooks and
noisy-neighbour loads.

Run from the repository root::

    .venv/bin/python -m bench                    # every target
    .venv/bin/python -m bench --only baseline    # one target (repeatable)
    BENCH_DURATION=30 .venv/bin/python -m bench  # longer measured run
    .venv/bin/python -m bench --only sessions --sessions 200  # memory and events/s per session
    .venv/bin/python -m bench --only webhooks --backlog 100000  # the target: 100k deliveries owed
    .venv/bin/python -m bench --only neighbours  # tenant B's latencies, alone and while A attacks

Results are printed as a table and written to ``bench/results/latest.json``.
"""
