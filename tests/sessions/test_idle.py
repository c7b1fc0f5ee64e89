"""An idle session runs no sender: a queued message starts one, which ends with the outbox empty;
on boot only the sessions with queued messages read their outbox."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, make_settings
from tests.support.events import EventWatcher, message_status, status_is
from zapgate.app import start, stop
from zapgate.messages.model import Message
from zapgate.services import Services, build_services
from zapgate.sessions.model import Session

TO = "5511999999999"


def senders(session: str) -> list[asyncio.Task[object]]:
    """The running sender tasks of a session of the default tenant."""
    name = f"sender:default:{session}"
    return [task for task in asyncio.all_tasks() if task.get_name() == name and not task.done()]


async def test_a_queued_message_starts_a_sender_that_ends_with_the_outbox_empty(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    async with EventWatcher(server.services.bus) as watcher:
        created = await api.post("/api/v1/sessions", json={"name": "idle"})
        assert created.status_code == 201
        await watcher.wait_for(status_is("idle", "WORKING"))
        assert senders("idle") == []

        sent = await api.post("/api/v1/sessions/idle/messages", json={"to": TO, "text": "oi"})
        assert sent.status_code == 202
        await watcher.wait_for(message_status(sent.json()["id"], "sent"))
    async with asyncio.timeout(5):
        await asyncio.gather(*senders("idle"))
    assert senders("idle") == []


async def test_on_boot_only_sessions_with_queued_messages_read_their_outbox(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    first = build_services(settings)
    await start(first)
    await first.sessions.create("default", "idle", "simulator", {}, {}, start=True)
    manual = {"pairing": "manual"}
    await first.sessions.create("default", "busy", "simulator", manual, {}, start=True)
    kept = await first.messages.accept("default", "busy", "", TO, "kept")
    await stop(first)

    second = build_services(settings)
    try:
        async with EventWatcher(second.bus) as watcher:
            await start(second)
            assert senders("idle") == []
            assert len(senders("busy")) == 1
            await watcher.wait_for(status_is("busy", "SCAN_QR_CODE"))
            await second.sessions.simulate_scan("default", "busy")
            await watcher.wait_for(message_status(kept.id, "sent"))
    finally:
        await stop(second)


async def test_a_send_committed_just_after_its_session_was_created_is_sent(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send's wake comes before the new session's sender exists; it must not be lost."""
    writer = services.sessions._writer
    create = writer.create
    sent: list[Message] = []

    async def create_then_send(*args: Any, **kwargs: Any) -> tuple[Session, bool]:
        created = await create(*args, **kwargs)
        sent.append(await services.messages.accept("default", "racy", "", TO, "first"))
        return created

    monkeypatch.setattr(writer, "create", create_then_send)
    async with EventWatcher(services.bus) as watcher:
        await services.sessions.create("default", "racy", "simulator", {}, {}, start=True)
        await watcher.wait_for(message_status(sent[0].id, "sent"))
