"""The send hot path at the HTTP protocol keeps HTTP/1.1's rules: pipelined requests answered in
order, ``Connection: close`` honoured, a client gone mid-body leaves nothing behind, and what it
does not serve (chunked bodies, ``Expect: 100-continue``, large bodies) the framework serves."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httptools
import httpx
import pytest

from tests.conftest import ADMIN_KEY, AUTH, RunningServer
from zapgate.http.hotpath import HOT_BODY_MAX

NUMBER = "5511999999999"


def send_request(text: str, *extra: str) -> bytes:
    body = json.dumps({"number": NUMBER, "message": text}).encode()
    head = [
        "POST /whatsapp/send HTTP/1.1",
        "Host: test",
        f"Authorization: Bearer {ADMIN_KEY}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Answers:
    """Responses parsed off one connection as they arrive (httptools' response parser)."""

    def __init__(self) -> None:
        self.done: list[tuple[int, dict[bytes, bytes], bytes]] = []
        self._headers: dict[bytes, bytes] = {}
        self._body = b""
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self._headers, self._body))
        self._headers, self._body = {}, b""


async def read_answers(
    reader: asyncio.StreamReader, count: int
) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    answers = Answers()
    while len(answers.done) < count:
        data = await reader.read(65536)
        assert data, f"the connection closed after {len(answers.done)} of {count} answers"
        answers.parser.feed_data(data)
    return answers.done


async def connect(
    server: RunningServer,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    url = httpx.URL(server.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        yield reader, writer
    finally:
        writer.close()


def served(server: RunningServer) -> int:
    """Requests the server's hot path answered itself."""
    assert server.hot is not None
    return server.hot.served


async def stored_texts(server: RunningServer) -> list[str]:
    """Texts of the messages sent through the default session, as the API lists them."""
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as client:
        page = await client.get(
            "/api/v1/sessions/default/messages", params={"direction": "out", "limit": 50}
        )
    return sorted(message["text"] for message in page.json()["data"])


@pytest.fixture
async def raw(
    server: RunningServer,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    async for pair in connect(server):
        yield pair


async def test_pipelined_requests_are_answered_in_order(
    server: RunningServer, raw: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    reader, writer = raw
    health = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n"
    writer.write(send_request("one") + health + send_request("two"))
    answers = await read_answers(reader, 3)
    assert [status for status, _, _ in answers] == [200, 200, 200]
    first, middle, last = (json.loads(body) for _, _, body in answers)
    assert first["message"]["text"] == "one"
    assert last["message"]["text"] == "two"
    assert "status" in middle
    assert served(server) == 2
    assert await stored_texts(server) == ["one", "two"]


async def test_connection_close_is_answered_then_the_connection_closes(
    server: RunningServer, raw: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    reader, writer = raw
    writer.write(send_request("bye", "Connection: close"))
    ((status, headers, _),) = await read_answers(reader, 1)
    assert status == 200
    assert headers[b"connection"] == b"close"
    assert await reader.read() == b"", "the server closed the connection"
    assert served(server) == 1


async def test_a_client_gone_mid_body_leaves_nothing_queued(
    server: RunningServer, raw: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    _reader, writer = raw
    whole = send_request("never whole")
    writer.write(whole[:-5])
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    async for reader2, writer2 in connect(server):
        writer2.write(send_request("whole"))
        ((status, _, _),) = await read_answers(reader2, 1)
    assert status == 200
    assert await stored_texts(server) == ["whole"]


async def test_what_the_hot_path_does_not_serve_the_framework_does(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"number": "5511999999999",'
        yield b' "message": "chunked"}'

    chunked = await api.post(
        "/whatsapp/send", content=chunks(), headers={"Content-Type": "application/json"}
    )
    padded = json.dumps({"number": NUMBER, "message": "large"}) + " " * HOT_BODY_MAX
    large = await api.post(
        "/whatsapp/send", content=padded, headers={"Content-Type": "application/json"}
    )
    assert (chunked.status_code, large.status_code) == (200, 200)
    assert served(server) == 0
    assert await stored_texts(server) == ["chunked", "large"]


async def test_expect_100_continue_gets_its_interim_answer(
    server: RunningServer, raw: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    reader, writer = raw
    request = send_request("after continue", "Expect: 100-continue")
    head, body = request.split(b"\r\n\r\n", 1)
    writer.write(head + b"\r\n\r\n")
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(body)
    ((status, _, answer),) = await read_answers(reader, 1)
    assert status == 200
    assert json.loads(answer)["message"]["text"] == "after continue"
