"""Media use cases: take a file in (sniffed, content-addressed, stored), hand it out (to the
tenant, or by a signed link), fetch one by URL, and sweep files nothing uses any more."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.clock import now_ms
from zapgate.db.committer import Committer, UnitOfWork
from zapgate.db.secrets import secret as server_secret
from zapgate.errors import (
    LinkExpired,
    MediaNotFound,
    MediaRejected,
    PayloadTooLarge,
    Unavailable,
)
from zapgate.limits.concurrency import KeyConcurrency
from zapgate.limits.service import LimitService
from zapgate.media import repository, sniff
from zapgate.media.links import MAX_TTL_SECONDS, MediaLinks
from zapgate.media.model import MediaDraft, StoredMedia, store_key
from zapgate.media.store import MediaMissing, MediaStore, MediaStoreError
from zapgate.tasks import cancel_and_wait
from zapgate.webhooks import http11, ssrf

log = logging.getLogger(__name__)
T = TypeVar("T")
CHUNK = 1_048_576
UNUSED_GRACE_MS = 3_600_000
"""A file no message uses is kept this long (an upload racing its message is not swept)."""
SWEEP_BATCH = 500
INGESTS_PER_TENANT = 2
INLINE_HASH_BYTES = 262_144
"""Files larger than this are hashed in a thread (16 MiB takes ~30 ms of CPU)."""
DAY_MS = 86_400_000
SECRET_NAME = "media_links"  # noqa: S105 - the name of a secret, not one


class MediaService:
    """Files of every tenant, in one store; records in the ``media`` table."""

    def __init__(
        self,
        database: AsyncEngine,
        committer: Committer,
        store: MediaStore,
        limits: LimitService,
        fetcher: http11.Http11Client,
        max_bytes: int,
        link_ttl_seconds: int,
        fetch_timeout_seconds: float,
        public_url: str | None,
    ) -> None:
        self._database = database
        self._committer = committer
        self.store = store
        self._limits = limits
        self._fetcher = fetcher
        self.max_bytes = max_bytes
        self.link_ttl_seconds = link_ttl_seconds
        self._fetch_timeout = fetch_timeout_seconds
        self._public_url = public_url or ""
        self._links: MediaLinks | None = None
        self._task: asyncio.Task[None] | None = None
        self._turns = KeyConcurrency()

    async def start(self, sweep_every_seconds: float | None = 3600.0) -> None:
        """Open the store, load (or make) the link secret, and sweep now and then."""
        await self.store.start()
        self._links = MediaLinks(await server_secret(self._database, SECRET_NAME))
        if sweep_every_seconds is not None:
            self._task = asyncio.create_task(self._sweeping(sweep_every_seconds), name="media")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self._fetcher.close()
        await self.store.close()

    # taking files in -------------------------------------------------------------------------

    async def ingest_bytes(
        self, tenant: str, data: bytes, kind: str, declared: str | None, filename: str | None
    ) -> MediaDraft:
        """Store ``data`` for a ``kind`` message; MediaRejected if it is not one.

        At most ``INGESTS_PER_TENANT`` of a tenant's files are hashed and written at once (the
        rest wait), off the event loop: one tenant's uploads never stall the others.
        """
        self._check_size(len(data))
        mime_type = sniff.sniff(data, declared)
        sniff.check(kind, mime_type)
        async with self._turns.turn(tenant, INGESTS_PER_TENANT):
            if len(data) > INLINE_HASH_BYTES:
                sha256 = await asyncio.to_thread(_sha256, data)
            else:
                sha256 = _sha256(data)
            key = store_key(tenant, sha256)
            written = not await self._guarded(self.store.exists(key))
            if written:
                await self._guarded(self.store.put_bytes(key, data))
            draft = MediaDraft(sha256, len(data), mime_type, _filename(filename), written)
            if await self._record(tenant, draft) and not written:  # swept meanwhile: put back
                await self._guarded(self.store.put_bytes(key, data))
        return draft

    async def _record(self, tenant: str, draft: MediaDraft) -> bool:
        """Record the file now, before any message uses it: a send refused later (outbox full,
        session gone) leaves a record the sweep removes after ``UNUSED_GRACE_MS``, not bytes
        nobody knows of. Whether the record was made (not there before)."""

        async def job(unit: UnitOfWork) -> bool:
            _, made = await repository.claim(unit.connection, tenant, draft, now_ms())
            return made

        return await self._committer.run(job, background=tenant)

    @staticmethod
    async def _guarded(work: Awaitable[T]) -> T:
        """``work`` on the store; Unavailable (503) when the store fails (S3 away, disk full)."""
        try:
            return await work
        except (MediaStoreError, OSError) as error:
            log.error("the media store failed: %s", error)
            raise Unavailable("the media store is not available; try again later") from None

    async def fetch(self, url: str) -> tuple[bytes, str | None, str | None]:
        """GET ``url`` through the SSRF guard: its bytes, declared type and file name.

        An internal address, a failure or an answer other than 200 is MediaRejected; more than
        ``max_bytes`` is PayloadTooLarge.
        """
        try:
            async with asyncio.timeout(self._fetch_timeout):
                answer = await self._fetcher.get(url, {"accept": "*/*"}, self.max_bytes + 65_536)
        except ssrf.UnsafeAddress as unsafe:  # its text names the address: for the log only
            raise MediaRejected(f"media.url: {unsafe.public}") from None
        except ssrf.UnsafeUrl as unsafe:
            raise MediaRejected(f"media.url: {unsafe}") from None
        except http11.TooLarge:
            detail = f"the file at media.url is larger than {self.max_bytes} bytes"
            raise PayloadTooLarge(detail) from None
        except TimeoutError:
            raise MediaRejected(f"media.url: no answer in {self._fetch_timeout:g} s") from None
        except OSError:  # the address it tried is not the tenant's business
            raise MediaRejected("media.url: the server could not be reached") from None
        if answer.status != 200:
            raise MediaRejected(f"media.url answered {answer.status}, not 200")
        self._check_size(len(answer.excerpt))
        name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or None
        return answer.excerpt, answer.headers.get("content-type"), name

    def _check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise PayloadTooLarge(f"a file may have at most {self.max_bytes} bytes")
        if size == 0:
            raise MediaRejected("the file is empty")

    # handing files out -----------------------------------------------------------------------

    async def get(self, tenant: str, media_id: str) -> StoredMedia:
        """The tenant's file ``media_id``, or MediaNotFound."""
        found = await repository.get(self._database, tenant, media_id)
        if found is None:
            raise MediaNotFound(f"no media {media_id!r}")
        return found

    async def content(self, found: StoredMedia) -> AsyncIterator[bytes]:
        """The bytes of ``found``, in chunks (MediaNotFound if they are gone)."""
        chunks = self.store.stream(found.key, CHUNK)
        try:
            first = await self._guarded(anext(chunks))
        except (MediaMissing, StopAsyncIteration):
            raise MediaNotFound(f"the file of media {found.id!r} is gone") from None
        return _chain(first, chunks)

    async def read(self, tenant: str, sha256: str) -> bytes:
        """The whole file (for an engine to send)."""
        return await self.store.read(store_key(tenant, sha256))

    def link(self, tenant: str, media_id: str, ttl_seconds: int | None = None) -> tuple[str, int]:
        """A signed link to the file and when it expires (Unix seconds)."""
        assert self._links is not None, "start() first"
        ttl = min(ttl_seconds or self.link_ttl_seconds, MAX_TTL_SECONDS)
        expires_at = int(time.time()) + ttl
        return self._public_url + self._links.path(tenant, media_id, expires_at), expires_at

    def check_link(self, tenant: str, media_id: str, expires_at: int, signature: str) -> None:
        """LinkExpired unless the link is this server's, unaltered, and not yet expired."""
        assert self._links is not None, "start() first"
        if not self._links.valid(tenant, media_id, expires_at, signature):
            raise LinkExpired("this media link is not valid")
        if expires_at < time.time():
            raise LinkExpired("this media link has expired")

    # sweeping --------------------------------------------------------------------------------

    async def sweep(self, tenant: str) -> int:
        """Remove the tenant's files that no message uses (after a grace period) and those past
        its retention; returns how many went."""
        now = now_ms()
        days = (await self._limits.of(tenant)).media_retention_days
        expired_before = now - days * DAY_MS if days else None
        removed = 0
        while found := await repository.unused(
            self._database, tenant, now - UNUSED_GRACE_MS, SWEEP_BATCH, expired_before
        ):
            for item in found:
                removed += await self.remove(item)
            if len(found) < SWEEP_BATCH:
                break
        return removed

    async def remove(self, found: StoredMedia) -> bool:
        """Forget ``found`` and delete its bytes, unless it was used again meanwhile."""

        async def forget(unit: UnitOfWork) -> bool:
            return await repository.delete(unit.connection, found.tenant, found)

        if not await self._committer.run(forget, background=found.tenant):
            return False

        # The bytes go outside the writer (a slow store must not hold every tenant's writes);
        # a send claiming them again meanwhile finds them gone and puts them back (``ingest``).
        async with self._database.connect() as connection:
            again = await repository.recorded(connection, found.tenant, found.sha256)
        if not again:
            await self._guarded(self.store.delete(found.key))
        return True

    async def release(self, tenant: str, media_id: str) -> bool:
        """Remove the file ``media_id`` now if no message uses it any more (a deleted
        message's); a file another message uses is kept. Whether it went."""
        found = await repository.unused_one(self._database, tenant, media_id)
        return found is not None and await self.remove(found)

    async def forget_tenant(self, tenant: str) -> None:
        """Delete every file of a tenant being deleted (its records go with its rows)."""
        async for key in self.store.keys(f"{tenant}/"):
            await self.store.delete(key)

    async def _sweeping(self, every_seconds: float) -> None:
        while True:
            await asyncio.sleep(every_seconds)
            try:
                for tenant in await repository.all_tenants_with_media(self._database):
                    await self.sweep(tenant)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("media sweep failed; trying again later")


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _filename(name: str | None) -> str | None:
    """A file name safe to show and to put in a header: no path, no control characters."""
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() and c not in '"')[:255].strip()
    return name or None
