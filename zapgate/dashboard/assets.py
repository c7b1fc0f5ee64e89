"""The dashboard's files, read once: bytes, gzipped bytes, media type and ETag of each."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC = Path(__file__).parent / "static"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGE = "index.html"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


@cache
def assets() -> dict[str, Asset]:
    """Every served file by its name (vendored ones by theirs: names are unique)."""
    found: dict[str, Asset] = {}
    for path in sorted([*STATIC.glob("*"), *STATIC.glob("vendor/*")]):
        media_type = TYPES.get(path.suffix)
        if media_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:20]
        found[path.name] = Asset(body, gzip.compress(body, 9, mtime=0), media_type, f'"{digest}"')
    return found
