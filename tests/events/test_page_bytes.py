"""A page of events is bounded by bytes as well as by count: big events never make one huge
response (or one huge read), and paging on from ``next_after`` still yields every event once."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.conftest import RunningServer
from zapgate.db.committer import UnitOfWork
from zapgate.events.model import EventDraft
from zapgate.events.stream import PAGE_BYTES

BIG = 200_000  # characters of payload per event: five fit in a page


async def emit_big(server: RunningServer, count: int, size: int = BIG) -> None:
    async def job(unit: UnitOfWork) -> None:
        for n in range(count):
            unit.emit(EventDraft("default", "s1", "test.event", {"n": n, "blob": "x" * size}))

    await server.services.committer.run(job)


async def pages_after(api: httpx.AsyncClient, after: int) -> list[list[dict[str, Any]]]:
    """Every page from ``after`` to the end of the log, each checked for its size."""
    pages = []
    while True:
        answer = await api.get("/api/v1/events", params={"after": after, "limit": 1000})
        assert answer.status_code == 200
        assert len(answer.content) < PAGE_BYTES + 2 * BIG, "one event over the budget at most"
        page = answer.json()
        if not page["data"]:
            return pages
        pages.append(page["data"])
        after = page["next_after"]


def numbers(page: list[dict[str, Any]]) -> list[int]:
    return [event["payload"]["n"] for event in page if event["type"] == "test.event"]


async def test_a_page_of_big_events_stops_at_its_byte_budget(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await emit_big(any_server, 12)
    pages = [numbers(page) for page in await pages_after(any_api, 0)]
    assert [n for page in pages for n in page] == list(range(12)), "every event once, in order"
    assert max(len(page) for page in pages) <= PAGE_BYTES // BIG
    assert len([page for page in pages if page]) >= 3


async def test_an_event_bigger_than_the_budget_still_comes_alone(
    any_server: RunningServer, any_api: httpx.AsyncClient
) -> None:
    await emit_big(any_server, 2, size=PAGE_BYTES + 10)
    pages = [numbers(page) for page in await pages_after(any_api, 0)]
    assert [page for page in pages if page] == [[0], [1]], "one page never holds two"


async def test_a_stream_pages_on_past_a_byte_limited_page(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    await emit_big(server, 12)
    seen: list[int] = []
    sse = {"Accept": "text/event-stream"}
    async with api.stream("GET", "/api/v1/events", headers=sse, params={"after": 0}) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                event = orjson.loads(line[6:])
                if event["type"] == "test.event":
                    seen.append(event["payload"]["n"])
                    if len(seen) == 12:
                        break
    assert seen == list(range(12))
