"""The Graph API calls the engine makes: the phone number, sends, media up and down.

Over the webhooks' HTTP/1.1 client, so every call passes the SSRF guard (``base_url`` and
Meta's media URLs alike) on kept-alive connections. Failures raise :class:`GraphError`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from zapgate.engines.base import Media
from zapgate.engines.cloudapi.config import CloudApiConfig
from zapgate.engines.cloudapi.errors import GraphError, from_body
from zapgate.webhooks import http11, ssrf

ANSWER_MAX = 64 * 1024
"""Bytes of a JSON answer read at most."""
SHOWN = "********"
"""A secret quoted in an error, as it is shown."""
UNSAFE = -2
"""What a call that got no answer from Meta raises (``_unreachable`` words it)."""
"""The code of a refusal by the SSRF guard (a config problem: like a bad token)."""


class GraphClient:
    """One session's Graph API: its phone number id, token and version."""

    def __init__(self, config: CloudApiConfig, http: http11.Http11Client, max_bytes: int) -> None:
        self._config = config
        self._http = http
        self._max_bytes = max_bytes
        self._root = config.graph
        self._json_headers = {
            "authorization": f"Bearer {config.access_token}",
            "content-type": "application/json",
            "accept": "application/json",
        }

    async def phone(self) -> dict[str, Any]:
        """The phone number: its display number, verified name, quality and tier."""
        fields = "verified_name,display_phone_number,quality_rating,throughput"
        url = f"{self._root}/{self._config.phone_number_id}?fields={fields}"
        return await self._get_json(url)

    async def send(self, payload: dict[str, Any]) -> str:
        """POST a message; its ``wamid``."""
        url = f"{self._root}/{self._config.phone_number_id}/messages"
        answer = await self._post_json(url, json.dumps(payload, separators=(",", ":")).encode())
        found = answer.get("messages")
        if isinstance(found, list) and found and isinstance(found[0], dict):
            wamid = found[0].get("id")
            if isinstance(wamid, str) and wamid:
                return wamid
        raise GraphError(-1, "the Graph API accepted the message without an id", "", 200)

    async def mark_read(self, wamid: str) -> None:
        """Mark a received message read (blue ticks)."""
        url = f"{self._root}/{self._config.phone_number_id}/messages"
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        await self._post_json(url, json.dumps(body).encode())

    async def upload(self, media: Media) -> str:
        """Upload a file for sending; its media id (valid for 30 days)."""
        boundary = secrets.token_hex(16)
        name = (media.filename or "file").translate({34: "_", 13: "_", 10: "_", 92: "_"})
        body = b"".join(
            [
                _part(boundary, 'name="messaging_product"', b"whatsapp"),
                _part(boundary, 'name="type"', media.mime_type.encode()),
                _part(
                    boundary,
                    f'name="file"; filename="{name}"',
                    media.data,
                    media.mime_type,
                ),
                f"--{boundary}--\r\n".encode(),
            ]
        )
        headers = {
            "authorization": self._json_headers["authorization"],
            "content-type": f"multipart/form-data; boundary={boundary}",
            "accept": "application/json",
        }
        url = f"{self._root}/{self._config.phone_number_id}/media"
        answer = await self._call(self._http.post(url, body, headers, keep=ANSWER_MAX))
        media_id = answer.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise GraphError(-1, "the Graph API took the file without giving its id", "", 200)
        return media_id

    async def download(self, media_id: str) -> tuple[bytes, str | None]:
        """A received file's bytes and Meta's word on its type: its URL, then the URL's bytes
        (with the token; at most the media limit)."""
        described = await self._get_json(f"{self._root}/{media_id}")
        url = described.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise GraphError(-1, "the Graph API gave no URL for the file", "", 200)
        headers = {"authorization": self._json_headers["authorization"], "accept": "*/*"}
        try:
            async with asyncio.timeout(self._config.timeout_seconds):
                answer = await self._http.get(url, headers, self._max_bytes + ANSWER_MAX)
        except http11.TooLarge:
            raise GraphError(-3, f"the file is larger than {self._max_bytes} bytes") from None
        except http11.UNREACHABLE as error:
            raise _unreachable(error) from None
        if answer.status != 200:
            raise self._scrubbed(from_body(http11.json_or_none(answer.excerpt), answer.status))
        mime = described.get("mime_type")
        return answer.excerpt, mime if isinstance(mime, str) else None

    async def _get_json(self, url: str) -> dict[str, Any]:
        return await self._call(self._http.get(url, self._json_headers, ANSWER_MAX))

    async def _post_json(self, url: str, body: bytes) -> dict[str, Any]:
        return await self._call(self._http.post(url, body, self._json_headers, keep=ANSWER_MAX))

    async def _call(self, request: Any) -> dict[str, Any]:
        """The JSON of a 2xx answer; GraphError for anything else."""
        try:
            async with asyncio.timeout(self._config.timeout_seconds):
                answer: http11.Answer = await request
        except http11.UNREACHABLE as error:
            raise _unreachable(error) from None
        body = http11.json_or_none(answer.excerpt)
        if not 200 <= answer.status < 300:
            raise self._scrubbed(from_body(body, answer.status))
        if not isinstance(body, dict):
            raise GraphError(-1, f"the Graph API answered HTTP {answer.status} without JSON")
        return body

    def _scrubbed(self, error: GraphError) -> GraphError:
        """``error`` without the session's secrets (Meta may quote a malformed token back)."""
        for secret in (self._config.access_token, self._config.app_secret):
            error.title = error.title.replace(secret, SHOWN)
            error.details = error.details.replace(secret, SHOWN)
        return error


def _part(boundary: str, disposition: str, data: bytes, content_type: str | None = None) -> bytes:
    head = f"--{boundary}\r\ncontent-disposition: form-data; {disposition}\r\n"
    if content_type:
        head += f"content-type: {content_type}\r\n"
    return head.encode() + b"\r\n" + data + b"\r\n"


def _unreachable(error: BaseException) -> GraphError:
    if isinstance(error, ssrf.UnsafeUrl):
        return GraphError(UNSAFE, "the Graph API's address is refused", str(error).split(":")[0])
    if isinstance(error, TimeoutError):
        return GraphError(-1, "the Graph API did not answer in time")
    return GraphError(-1, f"cannot reach the Graph API: {type(error).__name__}")
