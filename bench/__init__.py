"""Benchmark harness: zapgate vs. a bare ASGI baseline, measured with wrk.

Run from the repository root::

    .venv/bin/python -m bench                    # every target
    .venv/bin/python -m bench --only baseline    # one target (repeatable)
    BENCH_DURATION=30 .venv/bin/python -m bench  # longer measured run

Results are printed as a table and written to ``bench/results/latest.json``.
"""
