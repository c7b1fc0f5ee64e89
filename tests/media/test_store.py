"""The media stores, local disk and S3 (moto's server), held to one spec by the same tests."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import socket
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import pytest

from tests.support.s3 import LocalS3, local_s3
from zapgate.media.local import PART_PREFIX, LocalMediaStore
from zapgate.media.s3 import MULTIPART_BYTES, S3MediaStore
from zapgate.media.store import MediaMissing, MediaStore, MediaStoreError

ROOT = Path(__file__).resolve().parents[2]


def key_of(data: bytes, tenant: str = "acme") -> str:
    return f"{tenant}/{hashlib.sha256(data).hexdigest()}"


def blob(size: int, tenant: str = "acme") -> tuple[str, bytes]:
    data = os.urandom(size)
    return key_of(data, tenant), data


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


async def listed(store: MediaStore, prefix: str) -> list[str]:
    return sorted([key async for key in store.keys(prefix)])


@pytest.fixture(scope="session")
def s3() -> Iterator[LocalS3]:
    with local_s3() as running:
        yield running


@pytest.fixture(scope="session")
def shared_bucket(s3: LocalS3) -> str:
    return s3.new_bucket()


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MediaStore]:
    """A started store of each kind (S3: a prefix of its own in a shared bucket)."""
    made: MediaStore
    if request.param == "local":
        made = LocalMediaStore(tmp_path / "media")
    else:
        s3: LocalS3 = request.getfixturevalue("s3")
        made = s3.store(request.getfixturevalue("shared_bucket"), prefix=secrets.token_hex(6))
    await made.start()
    yield made
    await made.close()


# the shared spec ------------------------------------------------------------------------------


async def test_a_file_reads_and_streams_back_identical(store: MediaStore, tmp_path: Path) -> None:
    key, data = blob(1024 * 1024)
    source = tmp_path / "upload"
    source.write_bytes(data)
    await store.put_file(key, source)
    source.unlink()  # the caller deletes its temp file; the store has its own copy

    assert hashlib.sha256(await store.read(key)).hexdigest() == key.split("/")[1]
    chunks = await collect(store.stream(key, chunk_size=64 * 1024))
    assert len(chunks) == 16
    assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(data).digest()


async def test_bytes_read_back_identical(store: MediaStore) -> None:
    key, data = blob(1000)
    await store.put_bytes(key, data)
    assert await store.read(key) == data
    assert b"".join(await collect(store.stream(key))) == data


async def test_putting_an_existing_key_again_changes_nothing(
    store: MediaStore, tmp_path: Path
) -> None:
    key, data = blob(100)
    await store.put_bytes(key, data)
    # not the key's bytes, so that a second write would show; a real caller never does this
    await store.put_bytes(key, b"other bytes")
    other = tmp_path / "other"
    other.write_bytes(b"other file")
    await store.put_file(key, other)
    assert await store.read(key) == data
    assert await listed(store, "acme/") == [key]


async def test_exists_and_delete(store: MediaStore) -> None:
    key, data = blob(10)
    assert not await store.exists(key)
    await store.put_bytes(key, data)
    assert await store.exists(key)
    await store.delete(key)
    assert not await store.exists(key)
    await store.delete(key)  # absent: no error


async def test_a_missing_key_raises_media_missing(store: MediaStore) -> None:
    key, _ = blob(10)
    with pytest.raises(MediaMissing):
        await store.read(key)
    chunks = store.stream(key)  # lazily: the first iteration raises
    with pytest.raises(MediaMissing):
        await collect(chunks)


BAD_KEYS = [
    "",
    "acme",
    "../x",
    "a/b/c",
    "acme/../" + "a" * 61,
    "../" + "a" * 64,
    "/" + "a" * 64,
    "acme/" + "A" * 64,
    "acme/" + "a" * 63,
    "acme/" + "a" * 65,
    "acme/" + "g" * 64,
    "acme/" + "a" * 64 + "/",
    "acme/" + "a" * 64 + "\n",
    "acme\n/" + "a" * 64,
    "-acme/" + "a" * 64,
    ".acme/" + "a" * 64,
    "a" * 65 + "/" + "a" * 64,
]


BAD_PREFIXES = ["acme", "../", "/", "acme/x", "a/b/", "acme\n/"]


async def accepted(store: MediaStore, key: str, source: Path) -> list[str]:
    """The operations that did not refuse ``key`` with the key's ValueError at once."""
    calls: dict[str, Awaitable[object]] = {
        "put_bytes": store.put_bytes(key, b"x"),
        "put_file": store.put_file(key, source),
        "exists": store.exists(key),
        "read": store.read(key),
        "delete": store.delete(key),
    }
    found = []
    for name, call in calls.items():
        try:
            await call
        except Exception as error:
            if isinstance(error, ValueError) and "invalid media key" in str(error):
                continue
        found.append(name)
    try:
        store.stream(key)  # at the call, not at the first iteration
    except ValueError:
        return found
    return [*found, "stream"]


async def test_invalid_keys_are_refused_before_the_storage_is_touched(
    store: MediaStore, tmp_path: Path
) -> None:
    source = tmp_path / "upload"
    source.write_bytes(b"x")
    assert {key: ops for key in BAD_KEYS if (ops := await accepted(store, key, source))} == {}
    assert await listed(store, "") == []


async def test_invalid_prefixes_are_refused(store: MediaStore) -> None:
    for prefix in BAD_PREFIXES:
        with pytest.raises(ValueError, match="invalid media prefix"):
            store.keys(prefix)


async def test_keys_lists_one_tenant_or_all(store: MediaStore) -> None:
    ours = [blob(10, "acme")[0], blob(10, "acme")[0]]
    theirs = blob(10, "acme-2")[0]  # a tenant whose name starts with ours
    for key in [*ours, theirs]:
        await store.put_bytes(key, b"content")
    assert await listed(store, "acme/") == sorted(ours)
    assert await listed(store, "acme-2/") == [theirs]
    assert await listed(store, "") == sorted([*ours, theirs])
    assert await listed(store, "nobody/") == []


# local disk ---------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield int(request.param)
    finally:
        os.umask(previous)


async def test_local_files_are_private(tmp_path: Path, umask: int) -> None:
    root = tmp_path / "media"
    store = LocalMediaStore(root)
    await store.start()
    key, data = blob(10)
    await store.put_bytes(key, data)

    tenant, digest = key.split("/")
    path = root / tenant / digest[:2] / digest
    assert path.read_bytes() == data
    assert [mode(p) for p in (root, root / tenant, path.parent)] == [0o700] * 3
    assert mode(path) == 0o600


def part_files(root: Path) -> list[Path]:
    return list(root.glob(f"*/*/{PART_PREFIX}*"))


LOCAL_WRITER = """
import asyncio, sys
from pathlib import Path
from zapgate.media.local import LocalMediaStore

root, key, source = sys.argv[1:]
asyncio.run(LocalMediaStore(Path(root)).put_file(key, Path(source)))
"""


async def spawn(script: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def kill(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        child.kill()  # SIGKILL
    await child.wait()


async def test_a_local_write_killed_midway_leaves_nothing(tmp_path: Path) -> None:
    """The writer copies from a FIFO that never ends, so it is killed mid-write, every time:
    once its ``.part-`` file holds data."""
    root = tmp_path / "media"
    store = LocalMediaStore(root)
    await store.start()
    source = tmp_path / "endless"
    os.mkfifo(source)
    feed = os.open(source, os.O_RDWR | os.O_NONBLOCK)  # a writer that never closes: no EOF
    key = key_of(b"never finished")
    child = await spawn(LOCAL_WRITER, str(root), key, str(source))
    try:
        async with asyncio.timeout(20):
            while not any(part.stat().st_size > 0 for part in part_files(root)):
                assert child.returncode is None, (await child.communicate())[1].decode()
                try:
                    os.write(feed, bytes(64 * 1024))
                except BlockingIOError:  # the pipe is full until the writer reads
                    await asyncio.sleep(0.005)
    finally:
        await kill(child)
        os.close(feed)

    assert child.returncode == -9
    assert not await store.exists(key)
    assert await listed(store, "") == []
    assert part_files(root) != []
    await LocalMediaStore(root).start()
    assert part_files(root) == []


# S3 -----------------------------------------------------------------------------------------


async def test_a_large_s3_file_goes_multipart_and_reads_back(s3: LocalS3, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    store = s3.store(bucket)
    await store.start()
    key, data = blob(20 * 1024 * 1024)
    source = tmp_path / "large"
    source.write_bytes(data)
    await store.put_file(key, source)

    etag = s3.client.head_object(Bucket=bucket, Key=key)["ETag"]
    parts = -(-len(data) // MULTIPART_BYTES)
    assert etag.endswith(f'-{parts}"')  # a multipart object's ETag counts its parts
    assert hashlib.sha256(await store.read(key)).digest() == hashlib.sha256(data).digest()
    await store.close()


S3_WRITER = """
import asyncio, json, sys, time
from pathlib import Path
from zapgate.media.s3 import S3MediaStore

options, bucket, key, source = sys.argv[1:]

def hold(**_):
    print("started", flush=True)  # every part is uploaded; the object is one call away
    time.sleep(600)

async def main():
    store = S3MediaStore(bucket, **json.loads(options))
    await store.start()
    store._s3.meta.events.register("before-call.s3.CompleteMultipartUpload", hold)
    await store.put_file(key, Path(source))

asyncio.run(main())
"""


async def test_an_s3_upload_killed_midway_leaves_nothing(s3: LocalS3, tmp_path: Path) -> None:
    """The writer is killed once every part is stored, just before CompleteMultipartUpload."""
    bucket = s3.new_bucket()
    key, data = blob(2 * MULTIPART_BYTES + 1)
    source = tmp_path / "large"
    source.write_bytes(data)
    child = await spawn(S3_WRITER, json.dumps(s3.store_options()), bucket, key, str(source))
    try:
        assert child.stdout is not None
        async with asyncio.timeout(20):
            line = await child.stdout.readline()
        assert line == b"started\n", (await child.communicate())[1].decode()
    finally:
        await kill(child)

    client = s3.client
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [upload["Key"] for upload in uploads] == [key]  # killed mid-upload: parts left

    # moto dates every upload 2010, so start() would abort it whatever the threshold
    store = s3.store(bucket, stale_upload_seconds=0)
    await store.start()  # aborts what a crash left behind
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert not await store.exists(key)
    assert await listed(store, "") == []
    await store.close()


async def test_s3_keys_live_under_the_prefix_and_skip_foreign_objects(s3: LocalS3) -> None:
    bucket = s3.new_bucket()
    store = s3.store(bucket, prefix="zapgate/media")
    await store.start()
    key, data = blob(10)
    await store.put_bytes(key, data)
    client = s3.client
    client.put_object(Bucket=bucket, Key="zapgate/media/acme/notes.txt", Body=b"not ours")
    client.put_object(Bucket=bucket, Key="elsewhere.txt", Body=b"not ours")

    names = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert f"zapgate/media/{key}" in names
    assert await listed(store, "") == [key]
    assert await listed(store, "acme/") == [key]
    await store.close()


async def test_s3_encryption_is_asked_for_when_enabled(s3: LocalS3, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    store = s3.store(bucket, encrypt=True)
    await store.start()
    small, data = blob(10)
    await store.put_bytes(small, data)
    large, data = blob(MULTIPART_BYTES + 1)
    source = tmp_path / "large"
    source.write_bytes(data)
    await store.put_file(large, source)
    client = s3.client
    for key in (small, large):
        assert client.head_object(Bucket=bucket, Key=key).get("ServerSideEncryption") == "AES256"
    await store.close()


async def test_a_missing_bucket_is_a_store_error(s3: LocalS3) -> None:
    store = s3.store("zg-no-such-bucket")
    with pytest.raises(MediaStoreError, match="zg-no-such-bucket"):
        await store.start()


async def test_an_unreachable_s3_is_a_store_error(s3: LocalS3) -> None:
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        store = S3MediaStore("bucket", **{**s3.store_options(), "endpoint_url": url})
        with pytest.raises(MediaStoreError, match="Could not connect"):
            await store.start()
