"""``GET /`` and ``/dashboard`` (the page) and ``/dashboard/assets/{name}`` (its files).

The page needs no credentials; it holds none either: every data call it makes carries the key
the user typed, kept in the tab's ``sessionStorage``. A strict Content-Security-Policy allows
only zapgate's own scripts, styles and connections (and ``data:`` images: the QR codes).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from zapgate.dashboard.assets import PAGE, TYPES, Asset, assets
from zapgate.errors import NotFound
from zapgate.http.errors import responses

router = APIRouter(tags=["dashboard"])
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
HTML: dict[int | str, dict[str, Any]] = {
    200: {"description": "The dashboard", "content": {"text/html": {"schema": {"type": "string"}}}}
}
AssetName = Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9][a-z0-9.-]*$")]


@router.get("/", response_class=Response, responses=HTML, summary="The dashboard (no credentials)")
async def home(request: Request) -> Response:
    return _serve(request, assets()[PAGE])


@router.get(
    "/dashboard", response_class=Response, responses=HTML, summary="The dashboard (no credentials)"
)
async def dashboard(request: Request) -> Response:
    return _serve(request, assets()[PAGE])


@router.get(
    "/dashboard/assets/{name}",
    response_class=Response,
    responses={
        200: {
            "description": "A script, style sheet or image of the dashboard",
            "content": {
                media_type.split(";")[0]: {"schema": {"type": "string"}}
                for media_type in sorted(set(TYPES.values()))
            },
        },
        304: {"description": "Unchanged since the ETag given in If-None-Match"},
        **responses(404, 422, authenticated=False),
    },
    summary="A dashboard file (no credentials)",
)
async def asset(request: Request, name: AssetName) -> Response:
    found = assets().get(name)
    if found is None or name == PAGE:
        raise NotFound(f"no dashboard file {name!r}")
    return _serve(request, found)


def _serve(request: Request, found: Asset) -> Response:
    headers = {**SECURITY_HEADERS, "ETag": found.etag, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzipped, media_type=found.media_type, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)
