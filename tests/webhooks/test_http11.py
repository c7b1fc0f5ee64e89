"""The delivery client: kept-alive connections, each opened to an address the SSRF guard checked
(rebinding refused at the next connection), capped answers, TLS with the host's name checked; and
its GET (a JWKS): the whole body, or TooLarge."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvloop

from zapgate.webhooks import ssrf
from zapgate.webhooks.client import WebhookClient
from zapgate.webhooks.http11 import EXCERPT_BYTES, RESPONSE_MAX, Http11Client, TooLarge

LOCAL = ssrf.Allowlist.parse("127.0.0.1")
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
CLOSE = b"<close>"
"""At the end of a scripted answer: the server hangs up once it is written."""


class Server:
    """A raw HTTP server: answers each request with the next scripted bytes (then ``OK``)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.answers: list[bytes] = []
        self.connections = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                declared = head.lower().split(b"content-length: ")[1:]  # none: a GET
                length = int(declared[0].split(b"\r\n")[0]) if declared else 0
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answers.pop(0) if self.answers else OK
                if not answer:
                    break  # hang up without answering
                writer.write(answer.removesuffix(CLOSE))
                await writer.drain()
                if answer.endswith(CLOSE):
                    break  # hang up after answering
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Server]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        try:
            yield self
        finally:
            self._server.close()


def dns(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    """Every lookup answers the next of ``answers`` (the last one for good); returns the log."""
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, **_kwargs: Any) -> list[Any]:
        asked.append(host)
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    return asked


async def test_requests_share_a_connection_and_the_host_is_resolved_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = dns(monkeypatch, ["127.0.0.1"])
    client = Http11Client(ssrf.Allowlist.parse("127.0.0.1,hooks.example.com"))
    async with Server().running() as server:
        for n in range(5):
            answer = await client.post(
                f"http://hooks.example.com:{server.port}/in?n={n}", b"{}", {"x-n": str(n)}
            )
            assert (answer.status, answer.excerpt) == (200, b"ok")
        await client.close()
    assert server.connections == 1
    assert asked == ["hooks.example.com"]
    first = server.requests[0]
    assert first.startswith(b"POST /in?n=0 HTTP/1.1\r\nhost: hooks.example.com:")
    assert b"\r\nx-n: 0\r\ncontent-length: 2\r\n\r\n{}" in first


async def test_a_new_connection_checks_the_address_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name rebinds to a private address: the next connection is refused, not made."""
    dns(monkeypatch, ["127.0.0.1", "10.0.0.7"])
    client = Http11Client(LOCAL)
    async with Server().running() as server:
        server.answers.append(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
        assert (await client.post(f"http://rebind.example.com:{server.port}/", b"", {})).status
        with pytest.raises(ssrf.UnsafeAddress):
            await client.post(f"http://rebind.example.com:{server.port}/", b"", {})
    assert server.connections == 1


async def test_a_huge_answer_is_cut_and_its_connection_not_reused() -> None:
    client = Http11Client(LOCAL)
    size = RESPONSE_MAX * 4
    async with Server().running() as server:
        server.answers.append(b"HTTP/1.1 500 No\r\ncontent-length: %d\r\n\r\n" % size + b"x" * size)
        answer = await client.post(f"http://127.0.0.1:{server.port}/", b"", {})
        assert (answer.status, answer.excerpt) == (500, b"x" * EXCERPT_BYTES)
        assert (await client.post(f"http://127.0.0.1:{server.port}/", b"", {})).status == 200
        await client.close()
    assert server.connections == 2


async def test_a_get_reads_the_whole_body_within_its_limit() -> None:
    client = Http11Client(LOCAL)
    body = b"k" * (RESPONSE_MAX * 2)  # beyond what a POST reads, within this GET's limit
    async with Server().running() as server:
        url = f"http://127.0.0.1:{server.port}/jwks"
        server.answers += [
            b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body,
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ]
        assert (await client.get(url, {"accept": "a/b"}, len(body) + 100)).excerpt == body
        assert (await client.get(url, {}, 100)).excerpt == b"abc"
        await client.close()
        sent = b"GET /jwks HTTP/1.1\r\nhost: 127.0.0.1:%d\r\naccept: a/b\r\n\r\n" % server.port
    assert server.requests[0] == sent, "no body, no content-length"
    assert server.connections == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"k" * 1000,
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3e8\r\n"
        + b"k" * 1000
        + b"\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\n" + b"k" * 1000 + CLOSE,
    ],
    ids=["length", "chunked", "until-close"],
)
async def test_a_get_beyond_its_limit_is_too_large(answer: bytes) -> None:
    client = Http11Client(LOCAL)
    async with Server().running() as server:
        server.answers.append(answer)
        with pytest.raises(TooLarge, match="larger than 500 bytes"):
            await client.get(f"http://127.0.0.1:{server.port}/", {}, 500)
        await client.close()


async def test_line_breaks_in_headers_are_refused() -> None:
    client = Http11Client(LOCAL)
    with pytest.raises(ValueError, match="line break"):
        await client.post("http://127.0.0.1:9/", b"", {"x": "a\r\nhost: evil"})


async def test_a_receiver_closing_without_answering_is_reported_so() -> None:
    client = WebhookClient(LOCAL, 30)
    await client.start()
    async with Server().running() as server:
        server.answers.append(b"")  # it reads the request, answers nothing, and hangs up
        outcome = await client.post(f"http://127.0.0.1:{server.port}/", b"", {})
    await client.close()
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("the receiver closed the connection without answering")


async def test_a_url_beyond_ascii_is_sent_encoded() -> None:
    client = Http11Client(LOCAL)
    async with Server().running() as server:
        answer = await client.post(f"http://127.0.0.1:{server.port}/pédido?q=ção&x=%2F", b"", {})
        with pytest.raises(ssrf.UnsafeUrl, match="whitespace"):  # the URL check comes first
            await client.post(f"http://127.0.0.1:{server.port}/p dido", b"", {})
        await client.close()
    assert answer.status == 200
    assert server.requests[0].startswith(b"POST /p%C3%A9dido?q=%C3%A7%C3%A3o&x=%2F HTTP/1.1\r\n")
    assert len(server.requests) == 1


async def test_an_answer_without_a_length_ends_where_the_connection_does() -> None:
    client = Http11Client(LOCAL)
    async with Server().running() as server:
        url = f"http://127.0.0.1:{server.port}/"
        server.answers.append(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nfine" + CLOSE)
        answer = await client.post(url, b"", {})
        assert (answer.status, answer.excerpt) == (200, b"fine")
        assert (await client.post(url, b"", {})).status == 200
        await client.close()
    assert server.connections == 2, "a connection delimited by its end is not reused"


async def test_a_kept_alive_connection_the_receiver_dropped_is_replaced_once() -> None:
    client = Http11Client(LOCAL)
    async with Server().running() as server:
        url = f"http://127.0.0.1:{server.port}/"
        assert (await client.post(url, b"first", {})).status == 200
        server.answers.append(b"")  # the kept-alive connection: it reads, then hangs up
        answer = await client.post(url, b"second", {})
        assert answer.status == 200
        await client.close()
    assert server.connections == 2
    assert [r.endswith(b"second") for r in server.requests] == [False, True, True]


async def test_an_answer_nobody_asked_for_ends_its_connection() -> None:
    client = Http11Client(LOCAL)
    async with Server().running() as server:
        url = f"http://127.0.0.1:{server.port}/"
        stray = b"HTTP/1.1 201 Extra\r\ncontent-length: 0\r\n\r\n"
        server.answers.append(OK + stray)  # two answers to one request
        assert (await client.post(url, b"", {})).status == 200
        assert (await client.post(url, b"", {})).status == 200, "not the stray 201"
        await client.close()
    assert server.connections == 2


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subject = ["-subj", "/CN=hooks.example.com", "-addext", "subjectAltName=DNS:hooks.example.com"]
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject]
    subprocess.run(
        [*command, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True
    )
    return cert, key


async def test_tls_checks_the_hosts_name_on_the_pinned_connection(
    monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    dns(monkeypatch, ["127.0.0.1"])
    async with Server(serving).running() as server:
        good = Http11Client(LOCAL, trusting)
        url = f"https://hooks.example.com:{server.port}/in"
        assert (await good.post(url, b"{}", {})).status == 200
        await good.close()
        with pytest.raises(ssl.SSLCertVerificationError):  # the right name, no trust
            await Http11Client(LOCAL).post(url, b"{}", {})
        with pytest.raises(ssl.SSLCertVerificationError):  # trusted, but another name
            await Http11Client(LOCAL, trusting).post(
                f"https://other.example.com:{server.port}/", b"{}", {}
            )
        untrusted = WebhookClient(LOCAL, 30)
        await untrusted.start()
        outcome = await untrusted.post(url, b"{}", {})
        await untrusted.close()
    assert outcome.error == "TLS failed: the receiver's certificate could not be verified"


def test_it_runs_on_uvloop_as_the_server_does() -> None:
    """uvloop's transports are not ``asyncio.Transport`` subclasses: nothing may assume so."""

    async def exchange() -> tuple[int, int]:
        async with Server().running() as server:
            client = Http11Client(LOCAL)
            answers = [await client.post(f"http://127.0.0.1:{server.port}/", b"", {}) for _ in "ab"]
            await client.close()
        return answers[-1].status, server.connections

    assert uvloop.run(exchange()) == (200, 1)
