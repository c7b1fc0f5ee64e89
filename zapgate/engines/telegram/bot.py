"""The Bot API calls the engine makes: ``https://api.telegram.org/bot<token>/<method>``.

Over the webhooks' HTTP/1.1 client, so every call passes the SSRF guard (``api_base`` is the
tenant's) on kept-alive connections. Calls without a file go as JSON; a file goes as
``multipart/form-data`` (its JSON-valued fields serialised, as the Bot API takes them). Failures
raise :class:`BotApiError`, with the token scrubbed from whatever they quote.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from zapgate.engines.base import Media
from zapgate.engines.telegram.config import TelegramConfig
from zapgate.engines.telegram.errors import NO_ANSWER, TOO_LARGE, UNSAFE, BotApiError, from_body
from zapgate.webhooks import http11, ssrf

ANSWER_MAX = 256 * 1024
"""Bytes of an answer read at most (a sent message, a file's description)."""
UPDATES_MAX = 8 * 1024 * 1024
"""Bytes of a ``getUpdates`` answer read at most (``UPDATES_LIMIT`` updates)."""
UPDATES_LIMIT = 100
SHOWN = "********"


class BotClient:
    """One bot's calls: its token, its server."""

    def __init__(self, config: TelegramConfig, http: http11.Http11Client, max_bytes: int) -> None:
        self._config = config
        self._http = http
        self._max_bytes = max_bytes
        self._root = f"{config.root}/bot{config.bot_token}"
        self._files = f"{config.root}/file/bot{config.bot_token}"

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """``method`` with ``params`` as JSON; its ``result``."""
        body = json.dumps(params or {}, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"content-type": "application/json", "accept": "application/json"}
        return await self._post(method, body, headers, ANSWER_MAX, self._config.timeout_seconds)

    async def upload(self, method: str, params: dict[str, Any], field: str, media: Media) -> Any:
        """``method`` with ``params`` and ``media`` as the file of ``field``; its ``result``."""
        boundary = secrets.token_hex(16)
        parts = [_part(boundary, f'name="{name}"', _form(value)) for name, value in params.items()]
        name = (media.filename or _default_name(field, media.mime_type)).translate(_UNQUOTED)
        disposition = f'name="{field}"; filename="{name}"'
        parts.append(_part(boundary, disposition, media.data, media.mime_type))
        body = b"".join([*parts, f"--{boundary}--\r\n".encode()])
        headers = {
            "content-type": f"multipart/form-data; boundary={boundary}",
            "accept": "application/json",
        }
        return await self._post(method, body, headers, ANSWER_MAX, self._config.timeout_seconds)

    async def updates(self, offset: int | None, seconds: int, allowed: list[str]) -> list[Any]:
        """A long poll: the updates from ``offset`` on (confirming those before it), waiting up
        to ``seconds`` for one."""
        params: dict[str, Any] = {
            "timeout": seconds,
            "limit": UPDATES_LIMIT,
            "allowed_updates": allowed,
        }
        if offset is not None:
            params["offset"] = offset
        body = json.dumps(params, separators=(",", ":")).encode()
        headers = {"content-type": "application/json", "accept": "application/json"}
        wait = seconds + self._config.timeout_seconds
        found = await self._post("getUpdates", body, headers, UPDATES_MAX, wait)
        if not isinstance(found, list):
            raise BotApiError(NO_ANSWER, "getUpdates answered without a list of updates")
        return found

    async def download(self, file_id: str) -> tuple[bytes, str]:
        """A received file's bytes and its path at Telegram (``photos/file_3.jpg``: its type
        shows in the extension); at most the media limit."""
        described = await self.call("getFile", {"file_id": file_id})
        path = described.get("file_path") if isinstance(described, dict) else None
        size = described.get("file_size") if isinstance(described, dict) else None
        if isinstance(size, int) and size > self._max_bytes:
            raise BotApiError(TOO_LARGE, f"the file is larger than {self._max_bytes} bytes")
        if not isinstance(path, str) or not path or ".." in path.split("/"):
            raise BotApiError(NO_ANSWER, "getFile gave no path for the file (over 20 MB?)")
        try:
            async with asyncio.timeout(self._config.timeout_seconds):
                answer = await self._http.get(
                    f"{self._files}/{path}", {"accept": "*/*"}, self._max_bytes + ANSWER_MAX
                )
        except http11.TooLarge:
            raise BotApiError(
                TOO_LARGE, f"the file is larger than {self._max_bytes} bytes"
            ) from None
        except http11.UNREACHABLE as error:
            raise self._scrubbed(_unreachable(error)) from None
        if answer.status != 200:
            raise self._scrubbed(from_body(http11.json_or_none(answer.excerpt), answer.status))
        if len(answer.excerpt) > self._max_bytes:
            raise BotApiError(TOO_LARGE, f"the file is larger than {self._max_bytes} bytes")
        return answer.excerpt, path

    async def _post(
        self, method: str, body: bytes, headers: dict[str, str], keep: int, seconds: float
    ) -> Any:
        """The ``result`` of an ``ok`` answer; BotApiError for anything else."""
        try:
            async with asyncio.timeout(seconds):
                answer = await self._http.post(f"{self._root}/{method}", body, headers, keep=keep)
        except http11.UNREACHABLE as error:
            raise self._scrubbed(_unreachable(error)) from None
        if not answer.whole:
            raise BotApiError(NO_ANSWER, f"{method} answered more than {keep} bytes")
        document = http11.json_or_none(answer.excerpt)
        if answer.status != 200 or not isinstance(document, dict) or document.get("ok") is not True:
            raise self._scrubbed(from_body(document, answer.status))
        if "result" not in document:
            raise BotApiError(NO_ANSWER, f"{method} answered ok without a result")
        return document["result"]

    def _scrubbed(self, error: BotApiError) -> BotApiError:
        """``error`` without the token (a server may quote the URL back)."""
        error.description = error.description.replace(self._config.bot_token, SHOWN)
        return error


_UNQUOTED = {34: "_", 13: "_", 10: "_", 92: "_"}
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "application/pdf": "pdf",
}


def _default_name(field: str, mime_type: str) -> str:
    """A file name for a file that has none (Telegram shows a document's name)."""
    return f"{field}.{_EXTENSIONS.get(mime_type, 'bin')}"


def _form(value: Any) -> bytes:
    """A form field's value: text as it is, anything else as JSON."""
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _part(boundary: str, disposition: str, data: bytes, content_type: str | None = None) -> bytes:
    head = f"--{boundary}\r\ncontent-disposition: form-data; {disposition}\r\n"
    if content_type:
        head += f"content-type: {content_type}\r\n"
    return head.encode() + b"\r\n" + data + b"\r\n"


def _unreachable(error: BaseException) -> BotApiError:
    if isinstance(error, ssrf.UnsafeUrl):
        return BotApiError(UNSAFE, f"the Bot API's address is refused: {str(error).split(':')[0]}")
    if isinstance(error, TimeoutError):
        return BotApiError(NO_ANSWER, "the Bot API did not answer in time")
    return BotApiError(NO_ANSWER, f"cannot reach the Bot API: {type(error).__name__}")
