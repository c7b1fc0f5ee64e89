"""Bearer JWTs instead of keys: HS256 with the configured secret, RS256/ES256 from a JWKS file
(rotated by rewriting it) or an https URL (fetched through the SSRF guard, cached, refreshed in the
background and on an unknown key id at most once per cooldown), claims mapped to tenant and
scopes; every way a token can be wrong is a 401, and a socket opened with a token is disconnected
when the token expires."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import trustme
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import ValidationError

from tests.conftest import RunningServer, make_settings, serve
from tests.realtime.support import connected
from tests.support.js_client import JsSocketClient
from tests.support.jwks import JwksServer
from zapgate.auth.jwks import COOLDOWN_SECONDS, JWKS_MAX_BYTES, KeySet, from_settings
from zapgate.clock import ManualClock
from zapgate.config import Settings
from zapgate.errors import Unauthorized
from zapgate.services import build_services

SECRET = "s" * 40
AUDIENCE = "zapgate"
ISSUER = "https://idp.example"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_NEXT = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwks(**keys: Any) -> str:
    """A JWKS document with these public keys by kid."""
    documents = []
    for kid, private in keys.items():
        algorithm = ECAlgorithm if isinstance(private, ec.EllipticCurvePrivateKey) else RSAAlgorithm
        public: dict[str, Any] = algorithm.to_jwk(private.public_key(), as_dict=True)
        documents.append({**public, "kid": kid.replace("_", "-"), "use": "sig"})
    return json.dumps({"keys": documents})


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    keys = tmp_path / "jwks.json"
    keys.write_text(jwks(rsa_1=RSA_KEY, ec_1=EC_KEY))
    return make_settings(
        tmp_path,
        jwt_secret=SECRET,
        jwt_jwks=keys,
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
    )


def token(
    key: Any = SECRET, algorithm: str = "HS256", kid: str | None = None, **claims: Any
) -> str:
    body = {
        "tenant": "default",
        "sub": "user-1",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": int(time.time()) + 300,
        "scope": "send",
        **claims,
    }
    body = {name: value for name, value in body.items() if value is not None}
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


def hmac_signed(secret: bytes, kid: str) -> str:
    """An HS256 token whose secret is ``secret`` (PyJWT refuses a PEM key as an HMAC secret;
    an attacker does not)."""

    def part(value: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    claims = {"tenant": "default", "aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 60}
    signing = part({"alg": "HS256", "typ": "JWT", "kid": kid}) + b"." + part(claims)
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing, hashlib.sha256).digest())
    return (signing + b"." + signature.rstrip(b"=")).decode()


def client(server: RunningServer, bearer: str) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {bearer}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10)


SEND = ("POST", "/api/v1/sessions/default/messages", {"to": "5511999999999", "text": "jwt"})
LEGACY = ("POST", "/whatsapp/send", {"number": "5511999999999", "message": "jwt"})
READ = ("GET", "/api/v1/sessions", None)
ADMIN = ("GET", "/api/v1/keys", None)


async def status(server: RunningServer, bearer: str, call: tuple[str, str, Any]) -> int:
    method, path, body = call
    async with client(server, bearer) as http:
        return (await http.request(method, path, json=body)).status_code


async def test_tokens_are_accepted_with_the_scopes_they_carry(server: RunningServer) -> None:
    hs = token(scope="send")
    assert [await status(server, hs, call) for call in (SEND, LEGACY, READ, ADMIN)] == [
        202,
        200,
        200,
        403,
    ]
    rs = token(RSA_KEY, "RS256", "rsa-1", scope=None, scp=["read"])
    assert [await status(server, rs, call) for call in (READ, SEND, LEGACY)] == [200, 403, 403]
    es = token(EC_KEY, "ES256", "ec-1", scope=None, scp="admin")
    assert await status(server, es, ADMIN) == 200


@pytest.mark.parametrize(
    "case",
    [
        "bad signature",
        "alg none",
        "expired",
        "wrong audience",
        "wrong issuer",
        "no exp",
        "unknown kid",
        "no kid",
        "public key as HMAC secret",
        "unknown tenant",
        "no tenant",
        "not a token",
    ],
)
async def test_every_wrong_token_is_a_401(server: RunningServer, case: str) -> None:
    public_pem = RSA_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    tokens: dict[str, Callable[[], str]] = {
        "bad signature": lambda: token("x" * 40),
        "alg none": lambda: jwt.encode(
            {"tenant": "default", "exp": int(time.time()) + 60}, None, "none"
        ),
        "expired": lambda: token(exp=int(time.time()) - 120),
        "wrong audience": lambda: token(aud="someone-else"),
        "wrong issuer": lambda: token(iss="https://evil.example"),
        "no exp": lambda: token(exp=None),
        "unknown kid": lambda: token(RSA_KEY, "RS256", "rsa-9"),
        "no kid": lambda: token(RSA_KEY, "RS256"),
        "public key as HMAC secret": lambda: hmac_signed(public_pem, kid="rsa-1"),
        "unknown tenant": lambda: token(tenant="nosuchtenant"),
        "no tenant": lambda: token(tenant=None),
        "not a token": lambda: "eyJhbGciOi.J9.x",
    }
    async with client(server, tokens[case]()) as http:
        answer = await http.get("/api/v1/sessions")
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "unauthorized"


async def test_the_jwks_file_is_read_again_when_the_keys_rotate(
    server: RunningServer, server_settings: Settings
) -> None:
    assert await status(server, token(RSA_KEY, "RS256", "rsa-1", scope="read"), READ) == 200
    assert server_settings.jwks_file is not None
    server_settings.jwks_file.write_text(jwks(rsa_2=RSA_NEXT))
    rotated = token(RSA_NEXT, "RS256", "rsa-2", scope="read")
    retired = token(RSA_KEY, "RS256", "rsa-1", scope="read", sub="user-2")  # not cached
    assert await status(server, rotated, READ) == 200
    assert await status(server, retired, READ) == 401


@pytest.mark.node
async def test_a_socket_opened_with_a_token_ends_when_the_token_expires(
    server: RunningServer,
) -> None:
    expiry = int(time.time()) + 2
    async with JsSocketClient(server.url, auth={"token": token(exp=expiry)}) as socket:
        assert (await socket.wait_for(connected, timeout=20))["kind"] == "connect"
        line = await socket.wait_for(lambda line: line["kind"] == "disconnect", timeout=15)
        assert line["reason"] == "io server disconnect"
        assert time.time() >= expiry - 0.05


# A JWKS URL ---------------------------------------------------------------------------------
WAIT = 10
"""Seconds any awaited event may take."""


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def idp(ca: trustme.CA) -> AsyncIterator[JwksServer]:
    """The identity provider's JWKS over HTTPS, serving keys rsa-1 and ec-1."""
    server = JwksServer(ca, body=jwks(rsa_1=RSA_KEY, ec_1=EC_KEY).encode())
    await server.start()
    yield server
    await server.stop()


def url_settings(tmp_path: Path, idp: JwksServer, **overrides: Any) -> Settings:
    """zapgate taking its keys from ``idp``, whose CA it trusts and whose address it admits."""
    values = {
        "jwt_secret": SECRET,
        "jwt_jwks": idp.url(),
        "jwt_jwks_allowlist": "127.0.0.1",
        "jwt_jwks_ca_file": idp.write_ca(tmp_path / "idp-ca.pem"),
        "jwt_audience": AUDIENCE,
        "jwt_issuer": ISSUER,
    }
    return make_settings(tmp_path, **{**values, **overrides})


@asynccontextmanager
async def url_keys(settings: Settings, clock: ManualClock) -> AsyncIterator[KeySet]:
    """The started key set of ``settings`` (its first fetch under way)."""
    keys = from_settings(settings, clock)
    assert keys is not None
    await keys.start()
    try:
        async with asyncio.timeout(WAIT):
            yield keys
    finally:
        await keys.stop()


async def test_tokens_signed_with_keys_of_a_jwks_url_are_accepted(
    tmp_path: Path, idp: JwksServer
) -> None:
    async with serve(build_services(url_settings(tmp_path, idp))) as server:
        rs = token(RSA_KEY, "RS256", "rsa-1", scope="read")
        assert await status(server, rs, READ) == 200
        for n in range(5):  # a known key never waits on the network
            es = token(EC_KEY, "ES256", "ec-1", scope="read", sub=f"user-{n}")
            assert await status(server, es, READ) == 200
        assert await status(server, token(scope="read"), READ) == 200
    assert idp.requests == 1


async def test_a_new_key_is_fetched_for_its_first_token_at_most_once_per_cooldown(
    tmp_path: Path, idp: JwksServer
) -> None:
    clock = ManualClock()
    async with serve(build_services(url_settings(tmp_path, idp), clock=clock)) as server:
        assert await status(server, token(RSA_KEY, "RS256", "rsa-1", scope="read"), READ) == 200
        idp.body = jwks(rsa_2=RSA_NEXT).encode()  # the provider rotates its key
        rotated = token(RSA_NEXT, "RS256", "rsa-2", scope="read")
        assert await status(server, rotated, READ) == 401, "fetched at start, just now"
        made_up = [token(RSA_KEY, "RS256", f"kid-{n}", scope="read") for n in range(20)]
        assert {await status(server, bearer, READ) for bearer in made_up} == {401}
        assert idp.requests == 1
        clock.advance(COOLDOWN_SECONDS)
        assert await status(server, rotated, READ) == 200, "fetched again, no restart"
        assert {await status(server, bearer, READ) for bearer in made_up} == {401}
        retired = token(RSA_KEY, "RS256", "rsa-1", scope="read", sub="user-2")
        assert await status(server, retired, READ) == 401
    assert idp.requests == 2


async def test_a_jwks_url_down_at_start_refuses_rs256_until_it_answers_but_not_hs256(
    tmp_path: Path, ca: trustme.CA
) -> None:
    idp = JwksServer(ca, body=jwks(rsa_1=RSA_KEY).encode())  # not started: nothing listens
    clock = ManualClock()
    rs = token(RSA_KEY, "RS256", "rsa-1", scope="read")
    try:
        async with serve(build_services(url_settings(tmp_path, idp), clock=clock)) as server:
            async with client(server, rs) as http:
                refused = await http.get("/api/v1/sessions")
            assert refused.status_code == 401
            assert "the JWKS is not available yet" in refused.json()["detail"]
            assert await status(server, token(scope="read"), READ) == 200
            await idp.start()
            clock.advance(COOLDOWN_SECONDS)
            assert await status(server, rs, READ) == 200
    finally:
        await idp.stop()


async def test_the_keys_are_refreshed_in_the_background(tmp_path: Path, idp: JwksServer) -> None:
    clock = ManualClock()
    settings = url_settings(tmp_path, idp)
    async with url_keys(settings, clock) as keys:
        assert (await keys.find("rsa-1")).key_id == "rsa-1"
        await clock.until_sleeping(1)
        idp.body = jwks(rsa_2=RSA_NEXT).encode()
        clock.advance(settings.jwt_jwks_refresh_seconds)
        await idp.until_requests(2)
        assert (await keys.find("rsa-2")).key_id == "rsa-2"
        with pytest.raises(Unauthorized, match="unknown key id 'rsa-1'"):
            await keys.find("rsa-1")
    assert idp.requests == 2


@pytest.mark.parametrize(
    ("answer", "reason"), [(503, "HTTP 503"), (302, "HTTP 302 (redirects are not followed)")]
)
async def test_a_failed_fetch_keeps_the_keys_fetched_before(
    tmp_path: Path, idp: JwksServer, caplog: pytest.LogCaptureFixture, answer: int, reason: str
) -> None:
    clock = ManualClock()
    async with url_keys(url_settings(tmp_path, idp), clock) as keys:
        assert (await keys.find("rsa-1")).key_id == "rsa-1"
        idp.status, idp.body = answer, jwks(rsa_2=RSA_NEXT).encode()
        clock.advance(COOLDOWN_SECONDS)
        with pytest.raises(Unauthorized, match="unknown key id 'rsa-2'"):
            await keys.find("rsa-2")
        assert (await keys.find("rsa-1")).key_id == "rsa-1"
    assert idp.requests == 2
    assert f"(keeping the 2 keys fetched before): {reason}" in caplog.text


@pytest.mark.parametrize("padding", [200 * 1024, JWKS_MAX_BYTES])
async def test_a_jwks_larger_than_its_limit_is_refused(
    tmp_path: Path, idp: JwksServer, caplog: pytest.LogCaptureFixture, padding: int
) -> None:
    idp.body = json.dumps({**json.loads(jwks(rsa_1=RSA_KEY)), "pad": "x" * padding}).encode()
    async with url_keys(url_settings(tmp_path, idp), ManualClock()) as keys:
        if padding < JWKS_MAX_BYTES:
            assert (await keys.find("rsa-1")).key_id == "rsa-1"
            return
        with pytest.raises(Unauthorized, match="not available yet"):
            await keys.find("rsa-1")
    assert f"(no keys): the answer is larger than {JWKS_MAX_BYTES} bytes" in caplog.text


def resolve(monkeypatch: pytest.MonkeyPatch, name: str, address: str) -> None:
    """``name`` resolves to ``address`` (other names as usual)."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: str, port: int, **options: Any) -> list[Any]:
        if host != name:
            return await real(host, port, **options)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("allowlist", ["", "127.0.0.1"])
async def test_a_jwks_url_resolving_to_a_private_address_is_refused_unless_allowed(
    tmp_path: Path,
    idp: JwksServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    allowlist: str,
) -> None:
    resolve(monkeypatch, "jwks.idp.example", "127.0.0.1")
    url = idp.url("jwks.idp.example")
    settings = url_settings(tmp_path, idp, jwt_jwks=url, jwt_jwks_allowlist=allowlist)
    async with url_keys(settings, ManualClock()) as keys:
        if allowlist:  # admitted, and TLS checked the name on the pinned address
            assert (await keys.find("rsa-1")).key_id == "rsa-1"
            return
        with pytest.raises(Unauthorized, match="not available yet"):
            await keys.find("rsa-1")
    assert idp.requests == 0
    assert (
        "jwks.idp.example resolves to 127.0.0.1, which is a loopback address; "
        "add 127.0.0.1 to ZAPGATE_JWT_JWKS_ALLOWLIST to allow it"
    ) in caplog.text


async def test_a_jwks_server_the_ca_file_does_not_vouch_for_is_refused(
    tmp_path: Path, idp: JwksServer, caplog: pytest.LogCaptureFixture
) -> None:
    other = JwksServer(trustme.CA()).write_ca(tmp_path / "other-ca.pem")
    async with url_keys(url_settings(tmp_path, idp, jwt_jwks_ca_file=other), ManualClock()) as keys:
        with pytest.raises(Unauthorized, match="not available yet"):
            await keys.find("rsa-1")
    assert "certificate verify failed" in caplog.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"jwt_jwks": "http://idp.example.com/jwks"}, "a JWKS URL must be https"),
        ({"jwt_jwks": "ftp://idp.example.com/jwks"}, "a JWKS URL must be https"),
        (
            {"jwt_jwks": "https://127.0.0.1/jwks", "webhook_allowlist": "127.0.0.1"},
            "127.0.0.1 is a loopback address; add 127.0.0.1 to ZAPGATE_JWT_JWKS_ALLOWLIST",
        ),
        (
            {"jwt_jwks": "https://keycloak.internal/certs"},
            "add keycloak.internal to ZAPGATE_JWT_JWKS_ALLOWLIST",
        ),
        ({"jwt_jwks_allowlist": "10.0.0.0/33"}, "ZAPGATE_JWT_JWKS_ALLOWLIST: '10.0.0.0/33'"),
        ({"jwt_jwks": "https://10.1.2.3/jwks", "jwt_jwks_allowlist": "10.0.0.0/8"}, None),
        (
            {"jwt_jwks": "https://keycloak.internal/c", "jwt_jwks_allowlist": "keycloak.internal"},
            None,
        ),
    ],
)
def test_a_jwks_url_is_checked_at_start(
    tmp_path: Path, overrides: dict[str, str], error: str | None
) -> None:
    if error is None:
        assert make_settings(tmp_path, **overrides).jwks_url == overrides["jwt_jwks"]
        return
    with pytest.raises(ValidationError, match=error):
        make_settings(tmp_path, **overrides)


def test_a_ca_file_must_hold_a_certificate(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ValidationError, match="holds no CA certificate"):
        make_settings(tmp_path, jwt_jwks_ca_file=tmp_path / "ca.pem")


TENANTS = ("GET", "/api/v1/tenants", None)


async def test_a_token_never_makes_its_holder_the_operator(server: RunningServer) -> None:
    """operator belongs to the operator's key: whoever signs a token cannot grant it."""
    for claims in ({"scope": "admin operator"}, {"scope": None, "scp": ["operator", "admin"]}):
        bearer = token(**claims)
        assert await status(server, bearer, ADMIN) == 200, "the other scopes still count"
        assert await status(server, bearer, TENANTS) == 403


async def test_a_suspended_tenants_tokens_are_refused_until_it_is_resumed(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/api/v1/tenants", json={"id": "acme"})).status_code == 201
    bearer = token(tenant="acme", scope="read")
    assert await status(server, bearer, READ) == 200
    assert (await api.post("/api/v1/tenants/acme/suspend")).status_code == 200
    async with client(server, bearer) as http:
        refused = await http.get("/api/v1/sessions")
    assert (refused.status_code, refused.json()["error"]) == (403, "tenant_suspended")
    assert (await api.post("/api/v1/tenants/acme/resume")).status_code == 200
    assert await status(server, bearer, READ) == 200
