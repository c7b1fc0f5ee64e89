"""The boundary check costs little and stays sound: its fast path never lets a problem through,
its walk is bounded, and a big body costs its sender more of their request rate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.limits.test_quotas import limited
from zapgate.http.admission import BODY_COST_BYTES, _is_stream
from zapgate.validation import MAX_VALUES, clearly_fine, problems

TEXT = st.text(alphabet=st.characters(codec=None), max_size=8) | st.sampled_from(
    ["\x00", "\ud800", "a\udfffb", "ok"]
)
NUMBERS = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 1e308, 1e-300])
)
VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(VALUES, st.booleans())
def test_the_fast_path_never_passes_a_body_the_walk_refuses(value: Any, upper: bool) -> None:
    raw = json.dumps(value, allow_nan=True)
    if upper:  # "\uD800" is as valid as "\ud800"; so is "1E+400"
        raw = raw.replace("\\ud", "\\uD").replace("e+", "E+")
    if clearly_fine(raw.encode()):
        assert problems(json.loads(raw)) == [], raw


def test_the_fast_path_takes_ordinary_bodies() -> None:
    body = {"to": "5511999999999", "text": "olá, tudo bem? \u2603" * 50, "n": 2**40}
    assert clearly_fine(json.dumps(body).encode())
    assert clearly_fine(json.dumps(body, ensure_ascii=False).encode())


def test_the_walk_is_bounded_whatever_the_body() -> None:
    wide = [0] * (MAX_VALUES * 5)
    found = problems(wide)
    assert [item["type"] for item in found] == ["boundary_size"]


def scope_with(*headers: tuple[bytes, bytes], query: bytes = b"") -> dict[str, Any]:
    return {"path": "/api/v1/events", "headers": list(headers), "query_string": query}


def test_only_the_first_accept_header_makes_a_stream_as_the_route_reads_it() -> None:
    json_first = scope_with((b"accept", b"application/json"), (b"accept", b"text/event-stream"))
    sse_first = scope_with((b"accept", b"text/event-stream"), (b"accept", b"application/json"))
    assert not _is_stream(json_first), "the route answers JSON at once: it takes a turn"
    assert _is_stream(sse_first)
    assert _is_stream(scope_with(query=b"after=0&wait=5"))


async def test_a_big_body_costs_more_of_the_request_rate(tmp_path: Path) -> None:
    big = {"name": "big", "metadata": {"blob": "x" * (2 * BODY_COST_BYTES)}}  # 3 tokens
    async with limited(tmp_path, rate_limit_per_key=0.001, rate_limit_burst=4) as (_server, api):
        first = await api.post("/api/v1/sessions", json=big)
        assert first.status_code in (201, 422), first.text
        assert (await api.get("/api/v1/sessions")).status_code == 200  # the 4th token
        refused = await api.get("/api/v1/sessions")
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"


async def test_a_body_that_is_not_json_skips_the_fast_lane_and_gets_the_routes_answer(
    tmp_path: Path,
) -> None:
    send = {"to": "5511999999999", "text": "hi"}
    async with limited(tmp_path) as (_server, api):
        answer = await api.post(
            "/api/v1/sessions/default/messages",
            content=json.dumps(send).encode(),
            headers={"Content-Type": "text/plain"},
        )
        assert answer.status_code == 422, answer.text
        assert isinstance(answer.json()["detail"], list)
        listed = await api.get("/api/v1/sessions/default/messages")
        assert listed.json()["data"] == [], "nothing was queued"
