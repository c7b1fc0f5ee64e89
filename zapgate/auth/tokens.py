"""Bearer JWTs, for teams whose identity provider already issues them: an alternative to keys.

HS256 with ``ZAPGATE_JWT_SECRET``; RS256 and ES256 with the keys of a JWKS file
(``ZAPGATE_JWT_JWKS``, read again when it changes, so a provider's key rotation is a file
update). The algorithm decides the key: an HS256 token is checked only against the secret and an
RS256/ES256 one only against the JWKS (no algorithm confusion); anything else (``none``
included) is refused. A token must carry ``exp``; ``nbf``/``iat`` are checked when present, all
with ``ZAPGATE_JWT_LEEWAY_SECONDS``; ``aud``/``iss`` when configured. Claims map to the tenant
(``ZAPGATE_JWT_TENANT_CLAIM``), the scopes (``scope``, space-separated, or ``scp``, a list or a
string) and the caller (``sub``). Signatures are PyJWT's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from zapgate.auth import scopes as scopes_of
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
    """Verifies bearer JWTs against a secret and/or a JWKS file."""

    def __init__(
        self,
        secret: str | None,
        jwks: Path | None,
        audience: str | None,
        issuer: str | None,
        tenant_claim: str,
        leeway_seconds: float,
    ) -> None:
        self._secret = secret
        self._jwks_path = jwks
        self._audience = audience
        self._issuer = issuer
        self._tenant_claim = tenant_claim
        self._leeway = leeway_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._read_as: tuple[int, int] | None = None  # (mtime_ns, size) of the file read

    @property
    def enabled(self) -> bool:
        """Whether any JWT can be accepted."""
        return self._secret is not None or self._jwks_path is not None

    @staticmethod
    def looks_like(presented: str) -> bool:
        """A JWT (three base64url parts, a JSON header), as opposed to an API key."""
        return presented.startswith("ey") and presented.count(".") == 2

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; Unauthorized (saying why) otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        algorithm = header.get("alg")
        key = self._key_for(algorithm, header.get("kid"))
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

    def _key_for(self, algorithm: object, kid: object) -> Any:
        if algorithm in SECRET_ALGORITHMS and self._secret is not None:
            return self._secret
        if algorithm in JWKS_ALGORITHMS and self._jwks_path is not None:
            if not isinstance(kid, str):
                raise Unauthorized("the token names no key (kid)")
            self._reload_if_changed()
            found = self._keys.get(kid)
            if found is None:
                raise Unauthorized(f"unknown key id {kid[:64]!r}")
            return found
        raise Unauthorized(f"tokens signed with {str(algorithm)[:20]!r} are not accepted")

    def _reload_if_changed(self) -> None:
        assert self._jwks_path is not None
        try:
            stat = self._jwks_path.stat()
            seen = (stat.st_mtime_ns, stat.st_size)
            if seen == self._read_as:
                return
            keys = jwt.PyJWKSet.from_json(self._jwks_path.read_text()).keys
        except (OSError, jwt.PyJWTError, ValueError) as error:
            if self._read_as is None:  # never read: nothing to verify with
                raise Unauthorized("the JWKS could not be read") from error
            return  # keep the keys read before (a file being rewritten)
        self._keys = {key.key_id: key for key in keys if key.key_id}
        self._read_as = seen

    def _claims(self, claims: dict[str, Any]) -> TokenClaims:
        tenant = claims.get(self._tenant_claim)
        if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
            raise Unauthorized(f"the token has no valid {self._tenant_claim!r} claim")
        subject = claims.get("sub")
        subject = subject[:SUBJECT_MAX] if isinstance(subject, str) and subject else tenant
        return TokenClaims(
            tenant, subject, scopes_of.granted(_scope_names(claims)), int(claims["exp"] * 1000)
        )


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
