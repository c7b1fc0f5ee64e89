"""Bearer JWTs, for teams whose identity provider already issues them: an alternative to keys.

HS256 with ``ZAPGATE_JWT_SECRET``; RS256 and ES256 with the keys of a JWKS (``ZAPGATE_JWT_JWKS``,
a file or an https URL: :mod:`zapgate.auth.jwks`). The algorithm decides the key: an HS256 token
is checked only against the secret and an RS256/ES256 one only against the JWKS (no algorithm
confusion); anything else (``none`` included) is refused. A token must carry ``exp``;
``nbf``/``iat`` are checked when present, all with ``ZAPGATE_JWT_LEEWAY_SECONDS``; ``aud``/``iss``
when configured. Claims map to the tenant (``ZAPGATE_JWT_TENANT_CLAIM``), the scopes (``scope``,
space-separated, or ``scp``, a list or a string) and the caller (``sub``). Signatures are PyJWT's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jwt

from zapgate.auth import scopes as scopes_of
from zapgate.auth.jwks import KeySet
from zapgate.auth.scopes import Scope
from zapgate.errors import Unauthorized
from zapgate.names import TENANT_ID

SECRET_ALGORITHMS = frozenset({"HS256"})
JWKS_ALGORITHMS = frozenset({"RS256", "ES256"})
_TENANT = re.compile(TENANT_ID)
SUBJECT_MAX = 100


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says about its caller."""

    tenant: str
    subject: str
    scopes: frozenset[str]
    expires_at: int
    """Epoch ms."""


class JwtVerifier:
    """Verifies bearer JWTs against a secret and/or a JWKS."""

    def __init__(
        self,
        secret: str | None,
        jwks: KeySet | None,
        audience: str | None,
        issuer: str | None,
        tenant_claim: str,
        leeway_seconds: float,
    ) -> None:
        self._secret = secret
        self._jwks = jwks
        self._audience = audience
        self._issuer = issuer
        self._tenant_claim = tenant_claim
        self._leeway = leeway_seconds

    @property
    def enabled(self) -> bool:
        """Whether any JWT can be accepted."""
        return self._secret is not None or self._jwks is not None

    async def start(self) -> None:
        """Begin fetching the JWKS (when it is a URL)."""
        if self._jwks is not None:
            await self._jwks.start()

    async def stop(self) -> None:
        """Stop fetching it."""
        if self._jwks is not None:
            await self._jwks.stop()

    @staticmethod
    def looks_like(presented: str) -> bool:
        """A JWT (three base64url parts, a JSON header), as opposed to an API key."""
        return presented.startswith("ey") and presented.count(".") == 2

    async def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; Unauthorized (saying why) otherwise. Waits on the network
        only when a JWKS URL's set lacks the token's key (at most once per cooldown)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        algorithm = header.get("alg")
        key = await self._key_for(algorithm, header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.PyJWTError as error:
            raise Unauthorized(f"invalid token: {error}") from None
        return self._claims(claims)

    async def _key_for(self, algorithm: object, kid: object) -> Any:
        if algorithm in SECRET_ALGORITHMS and self._secret is not None:
            return self._secret
        if algorithm in JWKS_ALGORITHMS and self._jwks is not None:
            if not isinstance(kid, str):
                raise Unauthorized("the token names no key (kid)")
            return await self._jwks.find(kid)
        raise Unauthorized(f"tokens signed with {str(algorithm)[:20]!r} are not accepted")

    def _claims(self, claims: dict[str, Any]) -> TokenClaims:
        tenant = claims.get(self._tenant_claim)
        if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
            raise Unauthorized(f"the token has no valid {self._tenant_claim!r} claim")
        subject = claims.get("sub")
        subject = subject[:SUBJECT_MAX] if isinstance(subject, str) and subject else tenant
        # operator belongs to the operator's key: a token never grants it, whoever signed it
        names = [name for name in _scope_names(claims) if name != Scope.OPERATOR]
        return TokenClaims(tenant, subject, scopes_of.granted(names), int(claims["exp"] * 1000))


def _scope_names(claims: dict[str, Any]) -> list[str]:
    """``scope`` (space-separated) or ``scp`` (a list, or space-separated)."""
    names: list[str] = []
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            names += value.split()
        elif isinstance(value, list):
            names += [item for item in value if isinstance(item, str)]
    return names
