"""The read fast lane answers history pages exactly as the framework routes do; anything it
does not serve reaches the routes unchanged."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN_KEY, make_settings, serve
from tests.http.test_fastlane_parity import BEARER, NUMBER, seconds_blurred, until_working
from zapgate.http.readlane import _plain_query
from zapgate.services import build_services

V1 = "/api/v1/sessions/default/messages"
LEGACY = "/whatsapp/messages"
READS = [
    (V1, BEARER),
    (V1 + "?limit=3", BEARER),
    (V1 + "?limit=3&cursor={third}", BEARER),
    (V1 + "?cursor={third}", {"X-Api-Key": ADMIN_KEY}),
    (V1 + "?limit=500", BEARER),
    (V1 + "?limit=0", BEARER),
    (V1 + "?limit=501", BEARER),
    (V1 + "?limit=abc", BEARER),
    (V1 + "?limit=", BEARER),
    (V1 + "?limit=3&limit=4", BEARER),
    (V1 + "?cursor=" + "x" * 65, BEARER),
    (V1 + "?direction=in&limit=2", BEARER),
    (V1 + "?unknown=1", BEARER),
    ("/api/v1/sessions/nope/messages", BEARER),
    (V1, {}),
    (LEGACY, BEARER),
    (LEGACY + "?limit=2", BEARER),
    (LEGACY + "?limit=2&before={third}", BEARER),
    (LEGACY + "?limit=501", BEARER),
    (LEGACY + "?cursor=x", BEARER),
    (LEGACY, {}),
]
VOLATILE_HEADERS = ("ratelimit", "ratelimit-policy", "retry-after", "link", "content-type")


def shape(response: httpx.Response) -> tuple[Any, ...]:
    headers = {name: response.headers.get(name) for name in VOLATILE_HEADERS}
    if headers["link"]:
        headers["link"] = re.sub(r"before=msg_\w+", "before=ID", headers["link"])
    return response.status_code, response.json(), seconds_blurred(headers)


async def answers(tmp_path: Path, fast_lane: bool) -> list[tuple[Any, ...]]:
    settings = make_settings(tmp_path, simulator_pairing_seconds=0, rate_limit_burst=1000)
    async with (
        serve(build_services(settings), fast_lane=fast_lane) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        await until_working(server)
        for n in range(6):
            body = {"from": NUMBER, "text": f"in {n}"}
            sent = await client.post(
                "/api/v1/sessions/default/simulate/inbound", json=body, headers=BEARER
            )
            assert sent.status_code == 201
        third = (await client.get(V1 + "?limit=3", headers=BEARER)).json()["data"][2]["id"]
        found = []
        for path, headers in READS:
            response = await client.get(path.format(third=third), headers=headers)
            found.append(shape(response))
        return found


async def test_history_pages_get_the_same_answers_from_the_read_lane(tmp_path: Path) -> None:
    fast = await answers(tmp_path / "fast", fast_lane=True)
    slow = await answers(tmp_path / "slow", fast_lane=False)
    for read, with_lane, without in zip(READS, fast, slow, strict=True):
        assert with_lane[0] == without[0], read
        assert with_lane[2] == without[2], read
        assert type(with_lane[1]) is type(without[1]), read
        assert _stable(with_lane[1]) == _stable(without[1]), read
    statuses = [answer[0] for answer in fast]
    assert statuses == [200, 200, 200, 200, 200, 422, 422, 422, 422, 200, 422, 200, 200, 404, 401,
                        200, 200, 200, 422, 200, 401]  # fmt: skip
    assert [m["text"] for m in fast[1][1]["data"]] == ["in 5", "in 4", "in 3"]
    assert [m["text"] for m in fast[2][1]["data"]] == ["in 2", "in 1", "in 0"]
    assert fast[2][1]["next_cursor"] is not None, "a full page has a next cursor"
    assert [m["body"] for m in fast[17][1]] == ["in 2", "in 1"]


def _stable(body: Any) -> Any:
    """The body without what differs between two servers (ids, times, cursors)."""
    if isinstance(body, list):
        return [_stable(item) for item in body]
    if isinstance(body, dict):
        return {
            key: _stable(value)
            for key, value in body.items()
            if key not in {"id", "timestamp", "updated_at", "next_cursor", "engine_message_id"}
        }
    return body


def test_the_lane_takes_only_plain_page_queries() -> None:
    def plain(query: bytes, cursor: str = "cursor", page_max: int = 500) -> Any:
        return _plain_query({"query_string": query}, cursor, page_max)

    assert plain(b"") == (50, None)
    assert plain(b"limit=7&cursor=msg_1") == (7, "msg_1")
    assert plain(b"before=msg_1", cursor="before") == (50, "msg_1")
    for refused in (b"limit=0", b"limit=501", b"limit=+5", b"limit=\xc2\xb2", b"limit=",
                    b"cursor=", b"limit=1&limit=2", b"chat=1", b"before=msg_1"):  # fmt: skip
        assert plain(refused) is None, refused
