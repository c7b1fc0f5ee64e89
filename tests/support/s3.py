"""A local S3 on 127.0.0.1: moto's server, which speaks the real S3 HTTP API, in a thread."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from zapgate.media.s3 import S3MediaStore

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class LocalS3:
    """The running server: a raw client to look with, fresh buckets, stores on them."""

    url: str

    @cached_property
    def client(self) -> Any:
        """A plain boto3 client, to look at the bucket behind a store's back."""
        return boto3.session.Session().client(
            "s3", endpoint_url=self.url, region_name=REGION, **CREDENTIALS
        )

    def new_bucket(self) -> str:
        name = f"zg-{secrets.token_hex(6)}"
        self.client.create_bucket(Bucket=name)
        return name

    def store(self, bucket: str, **options: Any) -> S3MediaStore:
        return S3MediaStore(bucket, **self.store_options(), **options)

    def store_options(self) -> dict[str, Any]:
        """What ``S3MediaStore`` needs besides the bucket to reach this server."""
        return {
            "endpoint_url": self.url,
            "region": REGION,
            "access_key_id": CREDENTIALS["aws_access_key_id"],
            "secret_access_key": CREDENTIALS["aws_secret_access_key"],
            "addressing_style": "path",
        }


@contextmanager
def local_s3() -> Iterator[LocalS3]:
    """Start the server on a free port; stop it at the end."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield LocalS3(f"http://{host}:{port}")
    finally:
        server.stop()
