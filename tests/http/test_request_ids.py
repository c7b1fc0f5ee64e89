"""Every answer carries ``X-Request-Id`` (the caller's when sane, else a new one), the send hot
path's too; with ``ZAPGATE_ACCESS_LOG`` each answer is a JSON log line naming the route template
and the key's id, never the key."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningServer, make_settings
from zapgate.config import Settings
from zapgate.logs import JsonFormatter


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, access_log=True)


class Lines(logging.Handler):
    """The access log's lines, formatted as they are written (inside the request)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def access_log() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("zapgate.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def test_every_answer_carries_a_request_id(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    listed = await api.get("/api/v1/sessions")
    assert listed.headers["x-request-id"].startswith("req_")
    sent = await api.post(  # the send hot path answers it
        "/api/v1/sessions/default/messages", json={"to": "5511999999999", "text": "oi"}
    )
    assert sent.status_code == 202
    assert sent.headers["x-request-id"].startswith("req_")
    assert sent.headers["x-request-id"] != listed.headers["x-request-id"]
    given = await api.get("/api/v1/sessions", headers={"X-Request-Id": "trace-42.a:b"})
    assert given.headers["x-request-id"] == "trace-42.a:b"
    odd = await api.get("/api/v1/sessions", headers={"X-Request-Id": "no spaces\tor tabs"})
    assert odd.headers["x-request-id"].startswith("req_")
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        refused = await anonymous.get("/api/v1/sessions")
        assert refused.status_code == 401
        assert refused.headers["x-request-id"].startswith("req_")
        refused_send = await anonymous.post(
            "/api/v1/sessions/default/messages",
            json={"to": "5511999999999", "text": "x"},
            headers={"Authorization": "Bearer zg_not_a_key_000000000000000000000000000000"},
        )
        assert refused_send.status_code == 401
        assert refused_send.headers["x-request-id"].startswith("req_")


async def test_the_access_log_names_the_template_and_key_id_never_the_key(
    server: RunningServer, api: httpx.AsyncClient, access_log: Lines
) -> None:
    sent = await api.post(
        "/api/v1/sessions/default/messages",
        json={"to": "5511999999999", "text": "oi"},
        headers={"X-Request-Id": "trace-send"},
    )
    assert sent.status_code == 202
    missing = await api.get("/api/v1/sessions/nosuch")
    assert missing.status_code == 404
    lines = {line["request_id"]: line for line in access_log.lines}
    line = lines["trace-send"]
    assert line["route"] == "/api/v1/sessions/{session}/messages"
    assert (line["method"], line["status"]) == ("POST", 202)
    assert str(line["key_id"]).startswith("key_")
    assert isinstance(line["ms"], float)
    shown = [entry for entry in access_log.lines if entry["status"] == 404]
    assert shown[0]["route"] == "/api/v1/sessions/{session}"
    assert ADMIN_KEY not in json.dumps(access_log.lines)
