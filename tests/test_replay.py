"""Catching up: Socket.IO replay from an offset, SSE with Last-Event-ID, and retention."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningServer, require_service
from tests.realtime.support import emit, got_seq, seqs, tenant_with_key
from tests.support.js_client import JsSocketClient, ensure_node_harness


@pytest.mark.node
async def test_reconnect_with_offset_gets_exactly_the_missed_events_then_live(
    server: RunningServer,
) -> None:
    require_service(ensure_node_harness())
    key = await tenant_with_key(server, "acme")
    async with JsSocketClient(server.url, auth={"token": key}, events=["event"]) as first:
        await first.wait_for(lambda line: line["kind"] == "connect")
        await emit(server, "acme", 1, 2, 3)
        await first.wait_for(got_seq(3))
        assert seqs(first) == [1, 2, 3]
        await first.close()
        await first.wait_exit()
    await emit(server, "acme", 4, 5, 6)
    async with JsSocketClient(
        server.url, auth={"token": key, "offset": 3}, events=["event", "resync_required"]
    ) as second:
        await second.wait_for(got_seq(6))
        await server.services.realtime.drain()
        await emit(server, "acme", 7)
        await second.wait_for(got_seq(7))
        assert seqs(second) == [4, 5, 6, 7]
        payloads = [
            line["args"][0]["payload"]["n"] for line in second.lines if line["kind"] == "event"
        ]
        assert payloads == [4, 5, 6, 7]


@pytest.mark.node
async def test_an_offset_older_than_retention_asks_for_a_resync(server: RunningServer) -> None:
    require_service(ensure_node_harness())
    key = await tenant_with_key(server, "old")
    await emit(server, "old", 1, 2, 3, 4)
    async with server.services.database.begin() as connection:
        from sqlalchemy import delete

        from zapgate.db.tables import events

        await connection.execute(
            delete(events).where(events.c.tenant_id == "old", events.c.seq <= 2)
        )
    async with JsSocketClient(
        server.url, auth={"token": key, "offset": 1}, events=["event", "resync_required"]
    ) as client:
        line = await client.wait_for(lambda x: x["kind"] == "event")
        assert line["name"] == "resync_required"
        assert line["args"][0] == {"offset": 1, "oldest_seq": 3, "latest_seq": 4}
        await emit(server, "old", 5)
        await client.wait_for(got_seq(5))
        assert seqs(client) == [5]


@pytest.mark.node
async def test_replay_respects_session_rooms_and_bad_offsets_are_refused(
    server: RunningServer,
) -> None:
    require_service(ensure_node_harness())
    key = await tenant_with_key(server, "rooms")
    await emit(server, "rooms", 1, session="a")
    await emit(server, "rooms", 2, session="b")
    await emit(server, "rooms", 3, session="a")
    async with JsSocketClient(
        server.url, auth={"token": key, "offset": 0, "sessions": ["a"]}, events=["event"]
    ) as client:
        await client.wait_for(got_seq(3))
        await server.services.realtime.drain()
        assert seqs(client) == [1, 3]
    async with JsSocketClient(
        server.url, auth={"token": key, "offset": "x"}, events=["event"]
    ) as refused:
        line = await refused.wait_for(lambda x: x["kind"] in {"connect", "connect_error"})
        assert line["kind"] == "connect_error"
        assert line["message"] == "invalid_offset"


async def test_server_sent_events_resume_from_last_event_id(server: RunningServer) -> None:
    key = await tenant_with_key(server, "sse")
    await emit(server, "sse", 1, 2, 3)
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}

    async def read_ids(extra: dict[str, str], count: int, live: int | None = None) -> list[str]:
        ids: list[str] = []
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10) as client,
            client.stream("GET", "/api/v1/events", headers={**headers, **extra}) as r,
        ):
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            async for line in r.aiter_lines():
                if line.startswith("id: "):
                    ids.append(line[4:])
                    if len(ids) == count - 1 and live is not None:
                        await emit(server, "sse", live)
                    if len(ids) == count:
                        return ids
        return ids

    assert await read_ids({}, 3) == ["1", "2", "3"]
    assert await read_ids({"Last-Event-ID": "2"}, 2, live=4) == ["3", "4"]
    async with httpx.AsyncClient(base_url=server.url) as client:
        bad = await client.get("/api/v1/events", headers={**headers, "Last-Event-ID": "x"})
    assert bad.status_code == 422


async def test_retention_removes_old_events_deliveries_and_keys(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    import sqlalchemy as sa

    from zapgate.db.tables import events, idempotency_keys

    await api.post(
        "/api/v1/sessions/default/messages",
        json={"to": "5511999999999", "text": "x"},
        headers={"Idempotency-Key": "old-key"},
    )
    async with server.services.database.begin() as connection:
        aged = await connection.execute(sa.update(events).values(created_at=1))
        await connection.execute(sa.update(idempotency_keys).values(expires_at=1))
        newest_aged = await connection.scalar(sa.select(sa.func.max(events.c.seq)))
    cleaned = await server.services.retention.clean()
    assert cleaned.events == aged.rowcount > 0
    assert cleaned.idempotency_keys == 1
    page = (await api.get("/api/v1/events", params={"after": 0})).json()
    assert all(event["seq"] > newest_aged for event in page["data"])
    again = await api.post(
        "/api/v1/sessions/default/messages",
        json={"to": "5511999999999", "text": "x"},
        headers={"Idempotency-Key": "old-key"},
    )
    assert "idempotent-replayed" not in again.headers, "an expired key is forgotten"
