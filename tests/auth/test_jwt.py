"""Bearer JWTs instead of keys: HS256 with the configured secret, RS256/ES256 from a JWKS file
(rotated by rewriting it), claims mapped to tenant and scopes; every way a token can be wrong
is a 401, and a socket opened with a token is disconnected when the token expires."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.conftest import RunningServer, make_settings
from tests.realtime.support import connected
from tests.support.js_client import JsSocketClient
from zapgate.config import Settings

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
    assert server_settings.jwt_jwks is not None
    server_settings.jwt_jwks.write_text(jwks(rsa_2=RSA_NEXT))
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
