"""The keys RS256/ES256 tokens are checked with: a JWKS file, or a JWKS at an https URL.

A file is read again when it changes (its mtime or size), so a rotation is a file update.

A URL is fetched at start, every ``ZAPGATE_JWT_JWKS_REFRESH_SECONDS``, and when a token names a
key id the set lacks, at most once per ``COOLDOWN_SECONDS`` (a flood of made-up key ids costs
the provider one request per cooldown, not one per token). Fetches go through the webhooks'
guarded client (:class:`~zapgate.webhooks.http11.Http11Client`): the name resolved once, its
addresses checked by the SSRF guard (``ZAPGATE_JWT_JWKS_ALLOWLIST`` admits a private provider)
and pinned, TLS verified (against ``ZAPGATE_JWT_JWKS_CA_FILE`` when set), no redirects, at most
``JWKS_MAX_BYTES`` in ``FETCH_TIMEOUT_SECONDS``. A failed fetch keeps the keys fetched before;
until one succeeds, RS256/ES256 tokens are refused (401). A token whose key is known never
waits on the network. The set lives in this process: each node fetches its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import jwt

from zapgate import __version__
from zapgate.clock import Clock
from zapgate.config import JWKS_ALLOWLIST_SETTING, Settings
from zapgate.errors import Unauthorized
from zapgate.tasks import cancel_and_wait
from zapgate.webhooks.http11 import ConnectFailed, Http11Client
from zapgate.webhooks.ssrf import Allowlist

log = logging.getLogger(__name__)

JWKS_MAX_BYTES = 256 * 1024
"""The largest answer (head and body) accepted from a JWKS URL."""
FETCH_TIMEOUT_SECONDS = 10.0
COOLDOWN_SECONDS = 30.0
"""The least time between two fetches caused by unknown key ids (or between retries of a
failing URL)."""
_HEADERS = {
    "accept": "application/jwk-set+json, application/json",
    "user-agent": f"zapgate/{__version__}",
}


class KeySet(Protocol):
    """Where the key of a token's ``kid`` comes from."""

    async def find(self, kid: str) -> jwt.PyJWK:
        """The key named ``kid``; Unauthorized when there is none."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def from_settings(settings: Settings, clock: Clock) -> KeySet | None:
    """The key set ``ZAPGATE_JWT_JWKS`` names, or None."""
    if settings.jwks_file is not None:
        return JwksFile(settings.jwks_file)
    if settings.jwks_url is None:
        return None
    tls = ssl.create_default_context(cafile=settings.jwt_jwks_ca_file)  # None: the system's CAs
    allowlist = Allowlist.parse(settings.jwt_jwks_allowlist, JWKS_ALLOWLIST_SETTING)
    http = Http11Client(allowlist, tls)
    return JwksUrl(settings.jwks_url, http, clock, settings.jwt_jwks_refresh_seconds)


def parse(text: str) -> dict[str, jwt.PyJWK]:
    """The keys of a JWKS document by kid (keys without one cannot be named, so are skipped)."""
    return {key.key_id: key for key in jwt.PyJWKSet.from_json(text).keys if key.key_id}


def _known(keys: dict[str, jwt.PyJWK], kid: str) -> jwt.PyJWK:
    found = keys.get(kid)
    if found is None:
        raise Unauthorized(f"unknown key id {kid[:64]!r}")
    return found


class JwksFile:
    """A JWKS file, read again when it changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._keys: dict[str, jwt.PyJWK] = {}
        self._read_as: tuple[int, int] | None = None  # (mtime_ns, size) of the file read

    async def start(self) -> None:
        """Nothing to do: the file is read when a token needs it."""

    async def stop(self) -> None:
        """Nothing to do."""

    async def find(self, kid: str) -> jwt.PyJWK:
        """The key named ``kid`` in the file as it is now."""
        self._reload_if_changed()
        return _known(self._keys, kid)

    def _reload_if_changed(self) -> None:
        try:
            stat = self._path.stat()
            seen = (stat.st_mtime_ns, stat.st_size)
            if seen == self._read_as:
                return
            keys = parse(self._path.read_text())
        except (OSError, jwt.PyJWTError, ValueError) as error:
            if self._read_as is None:  # never read: nothing to verify with
                raise Unauthorized("the JWKS could not be read") from error
            return  # keep the keys read before (a file being rewritten)
        self._keys = keys
        self._read_as = seen


class JwksUrl:
    """A JWKS at an https URL, fetched and cached; see the module."""

    def __init__(self, url: str, http: Http11Client, clock: Clock, refresh_seconds: float) -> None:
        self._url = url
        parts = urlsplit(url)
        self._shown = f"{parts.netloc}{parts.path}"  # for the log: never the query
        self._http = http
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = False
        self._failing = False
        self._last_attempt = -math.inf
        self._fetching: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Fetch now (without waiting for it), then every refresh interval."""
        self._task = asyncio.create_task(self._keep_fresh(), name="jwks-refresh")

    async def stop(self) -> None:
        """Stop fetching and close the connections."""
        await cancel_and_wait(self._task, self._fetching)
        self._task = self._fetching = None
        await self._http.close()

    async def find(self, kid: str) -> jwt.PyJWK:
        """The key named ``kid``: from the cache, or after a fetch when none is under way and the
        cooldown has passed since the last one (or by joining the one under way)."""
        if kid not in self._keys and (self._fetching is not None or self._may_fetch()):
            await self._refresh()
        if not self._fetched:
            raise Unauthorized("the JWKS is not available yet: its URL could not be fetched")
        return _known(self._keys, kid)

    def _may_fetch(self) -> bool:
        return self._clock.monotonic() - self._last_attempt >= COOLDOWN_SECONDS

    async def _keep_fresh(self) -> None:
        while True:
            await self._refresh()
            await self._clock.sleep(COOLDOWN_SECONDS if self._failing else self._refresh_seconds)

    async def _refresh(self) -> None:
        """Fetch, or wait for the fetch under way (a caller that gives up does not stop it)."""
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._fetch(), name="jwks-fetch")
        await asyncio.shield(self._fetching)

    async def _fetch(self) -> None:
        self._last_attempt = self._clock.monotonic()
        try:
            keys = await self._download()
        except Exception as error:
            self._failed(error)
        else:
            self._use(keys)
        finally:
            self._fetching = None

    async def _download(self) -> dict[str, jwt.PyJWK]:
        async with asyncio.timeout(FETCH_TIMEOUT_SECONDS):
            answer = await self._http.get(self._url, _HEADERS, JWKS_MAX_BYTES)
        if 300 <= answer.status < 400:
            raise ValueError(f"HTTP {answer.status} (redirects are not followed)")
        if answer.status != 200:
            raise ValueError(f"HTTP {answer.status}")
        return parse(answer.excerpt.decode())

    def _use(self, keys: dict[str, jwt.PyJWK]) -> None:
        if keys.keys() != self._keys.keys() or self._failing:
            log.info("JWKS at %s fetched: key ids %s", self._shown, ", ".join(sorted(keys)))
        self._keys, self._fetched, self._failing = keys, True, False

    def _failed(self, error: Exception) -> None:
        self._failing = True
        kept = f"keeping the {len(self._keys)} keys fetched before" if self._fetched else "no keys"
        if isinstance(error, OSError | ValueError | jwt.PyJWTError):  # TimeoutError, TLS included
            log.warning(
                "JWKS at %s could not be fetched (%s): %s", self._shown, kept, _reason(error)
            )
        else:
            log.error("JWKS at %s could not be fetched (%s)", self._shown, kept, exc_info=error)


def _reason(error: Exception) -> str:
    """For the operator's log (an address or a resolver's words are fine there)."""
    if isinstance(error, TimeoutError):
        return f"no answer within {FETCH_TIMEOUT_SECONDS:g} s"
    if isinstance(error, ConnectFailed):
        return str(error.os_error)
    return str(error) or type(error).__name__
