"""Media in an S3-compatible bucket: one object per key, boto3 run in threads.

An object appears only once fully written: a single PUT is atomic, and a multipart upload (above
``MULTIPART_BYTES``) shows nothing until CompleteMultipartUpload succeeds. A killed multipart
upload leaves its parts stored (and billed) but invisible; ``start`` aborts those older than
``stale_upload_seconds`` under the prefix. A bucket lifecycle rule
(AbortIncompleteMultipartUpload, DaysAfterInitiation 1) does the same without the node.

Permissions: s3:GetObject, PutObject, DeleteObject and ListBucket (without it S3 answers 403, not
404, for a missing object, and every put fails), plus ListBucketMultipartUploads and
AbortMultipartUpload for the sweep (skipped with a warning when refused).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from zapgate.media.store import MediaMissing, MediaStoreError, is_key, split_key, split_prefix

log = logging.getLogger(__name__)

MULTIPART_BYTES = 8 * 1024 * 1024
"""Files from this size go in parts of this size (S3's minimum part is 5 MiB)."""
MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
"""ClientError codes meaning the object is not there."""


class S3MediaStore:
    """Objects ``<prefix><tenant>/<sha256>`` in ``bucket``.

    ``endpoint_url`` None is AWS; credentials None use boto3's default chain (environment,
    profile, instance role). ``encrypt`` asks for SSE-S3 (AES256) on every object.
    ``addressing_style`` ``"path"`` suits local S3s (MinIO, moto).
    """

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        prefix: str = "",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: str | None = None,
        encrypt: bool = False,
        stale_upload_seconds: float = 86400.0,
    ) -> None:
        self._bucket = bucket
        self._prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._extra: dict[str, str] = {"ServerSideEncryption": "AES256"} if encrypt else {}
        self._stale_seconds = stale_upload_seconds
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES
        )
        self._client_options: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": _config(endpoint_url, addressing_style),
        }
        self._s3: Any = None

    async def start(self) -> None:
        """Make the client, check the bucket (MediaStoreError if unusable), abort stale uploads."""
        try:
            with _mapped(self._bucket):
                self._s3 = await asyncio.to_thread(
                    boto3.session.Session().client, "s3", **self._client_options
                )
                await asyncio.to_thread(self._s3.head_bucket, Bucket=self._bucket)
        except (MediaMissing, ValueError) as error:  # no such bucket; a malformed endpoint
            raise MediaStoreError(f"S3: bucket {self._bucket!r}: {error!r}") from None
        await asyncio.to_thread(self._abort_stale_uploads)

    async def close(self) -> None:
        if self._s3 is not None:
            await asyncio.to_thread(self._s3.close)
            self._s3 = None

    async def put_file(self, key: str, path: Path) -> None:
        name = self._name(key)
        if not await self._exists(key, name):
            with _mapped(key):
                await asyncio.to_thread(
                    self._s3.upload_file,
                    str(path),
                    self._bucket,
                    name,
                    ExtraArgs=self._extra,
                    Config=self._transfer,
                )

    async def put_bytes(self, key: str, data: bytes) -> None:
        name = self._name(key)
        if not await self._exists(key, name):
            with _mapped(key):
                await asyncio.to_thread(
                    self._s3.upload_fileobj,
                    io.BytesIO(data),
                    self._bucket,
                    name,
                    ExtraArgs=self._extra,
                    Config=self._transfer,
                )

    async def exists(self, key: str) -> bool:
        return await self._exists(key, self._name(key))

    async def read(self, key: str) -> bytes:
        name = self._name(key)
        with _mapped(key):
            answer = await asyncio.to_thread(self._s3.get_object, Bucket=self._bucket, Key=name)
            body = answer["Body"]
            try:
                return bytes(await asyncio.to_thread(body.read))
            finally:
                body.close()

    def stream(self, key: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        return self._chunks(key, self._name(key), chunk_size)

    async def delete(self, key: str) -> None:
        name = self._name(key)
        with _mapped(key):
            await asyncio.to_thread(self._s3.delete_object, Bucket=self._bucket, Key=name)

    def keys(self, prefix: str) -> AsyncIterator[str]:
        split_prefix(prefix)
        return self._keys(self._prefix + prefix)

    def _name(self, key: str) -> str:
        split_key(key)
        return self._prefix + key

    async def _exists(self, key: str, name: str) -> bool:
        try:
            with _mapped(key):
                await asyncio.to_thread(self._s3.head_object, Bucket=self._bucket, Key=name)
        except MediaMissing:
            return False
        return True

    async def _chunks(self, key: str, name: str, chunk_size: int) -> AsyncIterator[bytes]:
        with _mapped(key):
            answer = await asyncio.to_thread(self._s3.get_object, Bucket=self._bucket, Key=name)
        body = answer["Body"]
        try:
            while True:
                with _mapped(key):
                    chunk = await asyncio.to_thread(body.read, chunk_size)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def _keys(self, prefix: str) -> AsyncIterator[str]:
        pages = iter(
            self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix)
        )
        while True:
            with _mapped(prefix):
                page = await asyncio.to_thread(next, pages, None)
            if page is None:
                return
            for item in page.get("Contents", []):
                key = item["Key"][len(self._prefix) :]
                if is_key(key):
                    yield key

    def _abort_stale_uploads(self) -> None:
        """Abort this store's multipart uploads older than ``stale_upload_seconds``."""
        cutoff = time.time() - self._stale_seconds
        paginator = self._s3.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix):
                for upload in page.get("Uploads", []):
                    name = upload["Key"]
                    stale = upload["Initiated"].timestamp() <= cutoff
                    if stale and is_key(name[len(self._prefix) :]):
                        self._s3.abort_multipart_upload(
                            Bucket=self._bucket, Key=name, UploadId=upload["UploadId"]
                        )
        except (ClientError, BotoCoreError) as error:
            log.warning("media: could not abort stale multipart uploads: %s", error)


def _config(endpoint_url: str | None, addressing_style: str | None) -> Config:
    """Bounded waits, standard retries, a pool for parallel parts and reads."""
    options: dict[str, Any] = {}
    if endpoint_url is not None:
        # boto3 >= 1.36 sends CRC checksum headers that many S3-compatible servers refuse
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    if addressing_style is not None:
        options["s3"] = {"addressing_style": addressing_style}
    return Config(
        connect_timeout=10,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=32,
        **options,
    )


@contextmanager
def _mapped(key: str) -> Iterator[None]:
    """botocore's errors as ours: a missing object is MediaMissing, anything else (connection,
    credentials, permissions, bucket) MediaStoreError."""
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in MISSING:
            raise MediaMissing(key) from None
        raise MediaStoreError(f"S3: {error}") from error
    except (BotoCoreError, S3UploadFailedError) as error:
        raise MediaStoreError(f"S3: {error}") from error
