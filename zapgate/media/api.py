"""REST routes for media: a file by id with the tenant's credentials, a signed link to it, and
the link itself (which needs none until it expires)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from zapgate.clock import to_iso
from zapgate.http.auth import Reader
from zapgate.http.deps import services_of
from zapgate.http.errors import responses
from zapgate.http.responses import Json
from zapgate.media.links import MAX_TTL_SECONDS
from zapgate.media.links import PATH as LINK_PATH
from zapgate.media.model import StoredMedia
from zapgate.media.service import MediaService
from zapgate.names import TENANT_ID

router = APIRouter(prefix="/api/v1", tags=["media"])
MediaId = Annotated[
    str, Path(max_length=40, pattern=r"^med_[A-Za-z0-9]{1,36}$", examples=["med_01J000000"])
]
FILE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file's bytes, with its sniffed type",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_TTL_SECONDS,
        description="seconds the link works (default ZAPGATE_MEDIA_URL_TTL_SECONDS)",
    )


class LinkOut(BaseModel):
    url: str = Field(description="works without credentials until expires_at")
    expires_at: str


def _media(request: Request) -> MediaService:
    media = services_of(request).media
    assert media is not None
    return media


@router.get(
    "/media/{media_id}",
    response_class=StreamingResponse,
    responses={**responses(404), **FILE_RESPONSE},
    summary="A file of a message, with the tenant's credentials",
)
async def get_media(request: Request, media_id: MediaId, caller: Reader) -> StreamingResponse:
    media = _media(request)
    found = await media.get(caller.tenant, media_id)
    return _file(found, await media.content(found))


@router.post(
    "/media/{media_id}/url",
    response_model=LinkOut,
    responses=responses(404),
    summary="A signed link to a file, for a browser (no credentials needed until it expires)",
)
async def link_media(
    request: Request, media_id: MediaId, caller: Reader, body: LinkRequest | None = None
) -> Json:
    media = _media(request)
    found = await media.get(caller.tenant, media_id)
    url, expires_at = media.link(found.tenant, found.id, body.expires_in if body else None)
    if not url.startswith("http"):
        url = str(request.base_url).rstrip("/") + url
    return Json({"url": url, "expires_at": to_iso(expires_at * 1000)})


@router.get(
    LINK_PATH.removeprefix(router.prefix),  # where signed links point
    response_class=StreamingResponse,
    responses={**responses(403, 404), **FILE_RESPONSE},
    summary="A file by a signed link (403 once expired or if altered)",
)
async def signed_media(
    request: Request,
    media_id: MediaId,
    tenant: Annotated[str, Query(max_length=64, pattern=TENANT_ID)],
    expires: Annotated[int, Query(ge=0, le=2**40)],
    signature: Annotated[str, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]{1,64}$")],
) -> StreamingResponse:
    media = _media(request)
    media.check_link(tenant, media_id, expires, signature)
    found = await media.get(tenant, media_id)
    return _file(found, await media.content(found))


def _file(found: StoredMedia, chunks: AsyncIterator[bytes]) -> StreamingResponse:
    headers = {
        "Content-Length": str(found.size),
        "Cache-Control": "private, max-age=0",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "ETag": f'"{found.sha256}"',
    }
    if found.filename:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(found.filename)}"
    return StreamingResponse(chunks, media_type=found.mime_type, headers=headers)
