"""Media on the local disk: ``<root>/<tenant>/<sha[:2]>/<sha>``, folders 0700, files 0600."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from zapgate.files import FILE_MODE, private_dir
from zapgate.media.store import MediaMissing, is_key, split_key, split_prefix

PART_PREFIX = ".part-"
"""A file being written; never a key (keys are hex), and removed by ``start``."""
COPY_CHUNK = 1 << 20


class LocalMediaStore:
    """Files under ``root``; blocking I/O runs in threads.

    A put writes a 0600 temp file beside its target, fsyncs it, hard-links it to the key (which
    fails, and so does nothing, when the key exists) and fsyncs the folder: a kill at any point
    leaves either nothing or the whole file under the key, and at most a ``.part-`` file.
    """

    name = "local"

    def __init__(self, root: Path) -> None:
        self._root = root

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    async def close(self) -> None:
        return None

    async def put_file(self, key: str, path: Path) -> None:
        await self._put(key, lambda out: _copy(path, out))

    async def put_bytes(self, key: str, data: bytes) -> None:
        await self._put(key, lambda out: out.write(data))

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def read(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise MediaMissing(key) from None

    def stream(self, key: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        return _chunks(key, self._path(key), chunk_size)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    def keys(self, prefix: str) -> AsyncIterator[str]:
        return self._keys(split_prefix(prefix))

    def _path(self, key: str) -> Path:
        tenant, digest = split_key(key)
        return self._root / tenant / digest[:2] / digest

    def _start(self) -> None:
        private_dir(self._root)
        for leftover in self._root.glob(f"*/*/{PART_PREFIX}*"):
            leftover.unlink(missing_ok=True)

    async def _put(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        target = self._path(key)
        await asyncio.to_thread(self._publish, target, write)

    def _publish(self, target: Path, write: Callable[[BinaryIO], object]) -> None:
        if target.exists():
            return
        folder = target.parent
        if not folder.is_dir():
            private_dir(folder, within=self._root)
            _fsync_dir(folder.parent)
            _fsync_dir(self._root)
        temp = folder / f"{PART_PREFIX}{secrets.token_hex(8)}"
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            with os.fdopen(descriptor, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temp, target)
            except FileExistsError:
                return  # published meanwhile: same key, same bytes
            _fsync_dir(folder)
        finally:
            temp.unlink(missing_ok=True)

    async def _keys(self, tenant: str | None) -> AsyncIterator[str]:
        tenants = [tenant] if tenant is not None else await asyncio.to_thread(self._tenants)
        for name in tenants:
            for key in await asyncio.to_thread(self._keys_of, name):
                yield key

    def _tenants(self) -> list[str]:
        return sorted(entry.name for entry in _entries(self._root) if entry.is_dir())

    def _keys_of(self, tenant: str) -> list[str]:
        found = []
        for shard in _entries(self._root / tenant):
            for entry in _entries(Path(shard.path)):
                key = f"{tenant}/{entry.name}"
                if entry.name[:2] == shard.name and is_key(key):
                    found.append(key)
        return sorted(found)


async def _chunks(key: str, path: Path, chunk_size: int) -> AsyncIterator[bytes]:
    try:
        handle = await asyncio.to_thread(path.open, "rb")
    except FileNotFoundError:
        raise MediaMissing(key) from None
    with handle:
        while chunk := await asyncio.to_thread(handle.read, chunk_size):
            yield chunk


def _copy(source: Path, out: BinaryIO) -> None:
    with source.open("rb") as data:
        shutil.copyfileobj(data, out, COPY_CHUNK)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of ``folder`` (none if it is missing)."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
