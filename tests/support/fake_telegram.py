"""A strict local fake of the Telegram Bot API on 127.0.0.1, built from its public documentation.

It answers ``/bot<token>/<method>`` and ``/file/bot<token>/<path>`` as the Bot API does
(``{"ok": true, "result": ...}``, or ``{"ok": false, "error_code", "description",
"parameters"}``) for the methods the ``telegram`` engine uses, and checks every request: the
method's name (exact case), its parameters (required, known, of the right type, within their
limits), how they are encoded (JSON, a form, or ``multipart/form-data`` with the file as a part).
A request Telegram would refuse as malformed is answered ``400 Bad Request: ...`` and recorded
in :attr:`FakeTelegram.problems`, so a test can assert the engine sent nothing wrong. Legitimate
errors (a wrong token, a chat not found, a blocked bot, scripted flood control) are not problems.

Updates wait in a queue for ``getUpdates`` (an update is dropped once a call's ``offset`` is
above its id: confirmed), or are POSTed to the webhook ``setWebhook`` set, with its secret
token in ``X-Telegram-Bot-Api-Secret-Token``. One deviation, for the tests: a webhook may be
plain ``http://`` on any port (Telegram's cloud wants HTTPS on 443, 80, 88 or 8443; a local
Bot API server allows this too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{30,}")
USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
"""Update types sent only when ``allowed_updates`` names them."""
REACTIONS = frozenset(
    {
        "👍",
        "👎",
        "❤",
        "🔥",
        "🥰",
        "👏",
        "😁",
        "🤔",
        "🤯",
        "😱",
        "🤬",
        "😢",
        "🎉",
        "🤩",
        "🤮",
        "💩",
        "🙏",
        "👌",
        "🕊",
        "🤡",
        "🥱",
        "🥴",
        "😍",
        "🐳",
        "❤\u200d🔥",
        "🌚",
        "🌭",
        "💯",
        "🤣",
        "⚡",
        "🍌",
        "🏆",
        "💔",
        "🤨",
        "😐",
        "🍓",
        "🍾",
        "💋",
        "🖕",
        "😈",
        "😴",
        "😭",
        "🤓",
        "👻",
        "👨\u200d💻",
        "👀",
        "🎃",
        "🙈",
        "😇",
        "😨",
        "🤝",
        "✍",
        "🤗",
        "🫡",
        "🎅",
        "🎄",
        "☃",
        "💅",
        "🤪",
        "🗿",
        "🆒",
        "💘",
        "🙉",
        "🦄",
        "😘",
        "💊",
        "🙊",
        "😎",
        "👾",
        "🤷\u200d♂",
        "🤷",
        "🤷\u200d♀",
        "😡",
    }
)
"""The emoji a ``ReactionTypeEmoji`` may carry."""
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
PHOTO_MAX = 10 * 1024 * 1024
FILE_MAX = 50 * 1024 * 1024
DOWNLOAD_MAX = 20 * 1024 * 1024
"""Bots upload photos up to 10 MB and other files up to 50 MB; they download up to 20 MB."""
FILE_TYPES = {
    "photo": ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"),
    "sticker": ("image/webp", "application/x-tgsticker", "video/webm"),
    "voice": ("audio/ogg", "audio/mpeg", "audio/mp4"),
    "audio": ("audio/",),
    "video": ("video/",),
    "document": ("",),
}
"""What each kind of file upload may be (by its part's content type; a prefix)."""
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "audio/ogg": "oga",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "application/pdf": "pdf",
    "application/x-tgsticker": "tgs",
}


class Refused(Exception):
    """A request Telegram would refuse as malformed: a problem, answered 400."""


class Failure(Exception):
    """A legitimate Bot API error answer (not a problem)."""

    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(code, description)
        self.code = code
        self.description = description
        self.parameters = parameters


def failure_body(code: int, description: str, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


@dataclass
class Upload:
    """A file the fake holds: uploaded by the engine, or a user's (for ``getFile``)."""

    data: bytes
    mime_type: str
    filename: str | None
    path: str
    unique_id: str


@dataclass
class Call:
    """One request that reached a method (malformed ones too)."""

    method: str
    params: dict[str, Any]
    """The parameters as the engine sent them (JSON values decoded; files left out)."""
    files: dict[str, Upload]
    at: float
    """``time.monotonic()`` at arrival."""
    result: Any = None
    encoding: str = ""
    """``json``, ``form``, ``multipart`` or ``query``."""


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    max_connections: int = 40


@dataclass
class _Spec:
    """A method's parameters: name → (type, required)."""

    params: dict[str, tuple[str, bool]]
    files: frozenset[str] = frozenset()


COMMON_SEND = {
    "business_connection_id": ("str", False),
    "message_thread_id": ("int", False),
    "disable_notification": ("bool", False),
    "protect_content": ("bool", False),
    "allow_paid_broadcast": ("bool", False),
    "message_effect_id": ("str", False),
    "reply_parameters": ("object", False),
    "reply_markup": ("object", False),
}
CAPTION = {
    "caption": ("str", False),
    "parse_mode": ("str", False),
    "caption_entities": ("array", False),
}
SPECS: dict[str, _Spec] = {
    "getMe": _Spec({}),
    "getWebhookInfo": _Spec({}),
    "setWebhook": _Spec(
        {
            "url": ("str", True),
            "certificate": ("file", False),
            "ip_address": ("str", False),
            "max_connections": ("int", False),
            "allowed_updates": ("array", False),
            "drop_pending_updates": ("bool", False),
            "secret_token": ("str", False),
        },
        frozenset({"certificate"}),
    ),
    "deleteWebhook": _Spec({"drop_pending_updates": ("bool", False)}),
    "getUpdates": _Spec(
        {
            "offset": ("int", False),
            "limit": ("int", False),
            "timeout": ("int", False),
            "allowed_updates": ("array", False),
        }
    ),
    "getFile": _Spec({"file_id": ("str", True)}),
    "sendMessage": _Spec(
        {
            "chat_id": ("chat", True),
            "text": ("str", True),
            "parse_mode": ("str", False),
            "entities": ("array", False),
            "link_preview_options": ("object", False),
            **COMMON_SEND,
        }
    ),
    "sendPhoto": _Spec(
        {
            "chat_id": ("chat", True),
            "photo": ("file", True),
            **CAPTION,
            "show_caption_above_media": ("bool", False),
            "has_spoiler": ("bool", False),
            **COMMON_SEND,
        },
        frozenset({"photo"}),
    ),
    "sendVideo": _Spec(
        {
            "chat_id": ("chat", True),
            "video": ("file", True),
            "duration": ("int", False),
            "width": ("int", False),
            "height": ("int", False),
            "thumbnail": ("file", False),
            **CAPTION,
            "show_caption_above_media": ("bool", False),
            "has_spoiler": ("bool", False),
            "supports_streaming": ("bool", False),
            **COMMON_SEND,
        },
        frozenset({"video", "thumbnail"}),
    ),
    "sendAudio": _Spec(
        {
            "chat_id": ("chat", True),
            "audio": ("file", True),
            **CAPTION,
            "duration": ("int", False),
            "performer": ("str", False),
            "title": ("str", False),
            "thumbnail": ("file", False),
            **COMMON_SEND,
        },
        frozenset({"audio", "thumbnail"}),
    ),
    "sendVoice": _Spec(
        {"chat_id": ("chat", True), "voice": ("file", True), **CAPTION, "duration": ("int", False)}
        | COMMON_SEND,
        frozenset({"voice"}),
    ),
    "sendDocument": _Spec(
        {
            "chat_id": ("chat", True),
            "document": ("file", True),
            "thumbnail": ("file", False),
            **CAPTION,
            "disable_content_type_detection": ("bool", False),
            **COMMON_SEND,
        },
        frozenset({"document", "thumbnail"}),
    ),
    "sendSticker": _Spec(
        {"chat_id": ("chat", True), "sticker": ("file", True), "emoji": ("str", False)}
        | COMMON_SEND,
        frozenset({"sticker"}),
    ),
    "sendLocation": _Spec(
        {
            "chat_id": ("chat", True),
            "latitude": ("float", True),
            "longitude": ("float", True),
            "horizontal_accuracy": ("float", False),
            "live_period": ("int", False),
            "heading": ("int", False),
            "proximity_alert_radius": ("int", False),
            **COMMON_SEND,
        }
    ),
    "sendVenue": _Spec(
        {
            "chat_id": ("chat", True),
            "latitude": ("float", True),
            "longitude": ("float", True),
            "title": ("str", True),
            "address": ("str", True),
            "foursquare_id": ("str", False),
            "foursquare_type": ("str", False),
            "google_place_id": ("str", False),
            "google_place_type": ("str", False),
            **COMMON_SEND,
        }
    ),
    "sendContact": _Spec(
        {
            "chat_id": ("chat", True),
            "phone_number": ("str", True),
            "first_name": ("str", True),
            "last_name": ("str", False),
            "vcard": ("str", False),
            **COMMON_SEND,
        }
    ),
    "setMessageReaction": _Spec(
        {
            "chat_id": ("chat", True),
            "message_id": ("int", True),
            "reaction": ("array", False),
            "is_big": ("bool", False),
        }
    ),
    "editMessageText": _Spec(
        {
            "business_connection_id": ("str", False),
            "chat_id": ("chat", False),
            "message_id": ("int", False),
            "inline_message_id": ("str", False),
            "text": ("str", True),
            "parse_mode": ("str", False),
            "entities": ("array", False),
            "link_preview_options": ("object", False),
            "reply_markup": ("object", False),
        }
    ),
    "deleteMessage": _Spec({"chat_id": ("chat", True), "message_id": ("int", True)}),
    "sendChatAction": _Spec(
        {
            "business_connection_id": ("str", False),
            "chat_id": ("chat", True),
            "message_thread_id": ("int", False),
            "action": ("str", True),
        }
    ),
}
FILE_METHODS = {
    "sendPhoto": "photo",
    "sendVideo": "video",
    "sendAudio": "audio",
    "sendVoice": "voice",
    "sendDocument": "document",
    "sendSticker": "sticker",
}


def _keys(obj: dict[str, Any], where: str, required: set[str], optional: set[str]) -> None:
    if missing := sorted(required - obj.keys()):
        raise Refused(f"{where} lacks {', '.join(missing)}")
    if unknown := sorted(obj.keys() - required - optional):
        raise Refused(f"{where} has unknown field(s) {', '.join(unknown)}")


def _text(value: Any, where: str, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise Refused(f"{where} must be a string")
    if not low <= len(value) <= high:
        raise Refused(f"{where} must have {low}..{high} characters, has {len(value)}")
    return value


class FakeTelegram:
    """The Bot API for one bot, on ``127.0.0.1:<random port>``; ``url`` is the engine's
    ``api_base``."""

    def __init__(
        self,
        *,
        token: str = "7012345678:AAHfakeTelegramTokenForZapgateTests_01",
        username: str = "zapgate_test_bot",
        first_name: str = "Zapgate Test",
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":")[0])
        self.username = username
        self.first_name = first_name
        self.url = ""
        self.calls: list[Call] = []
        self.problems: list[str] = []
        self.requests = 0
        self.webhook: Webhook | None = None
        self.files: dict[str, Upload] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        """Every message of every chat (the users' and the bot's), by chat and message id."""
        self.missing_chats: set[int] = set()
        """Chats the bot cannot see: ``chat not found``."""
        self.blocked: set[int] = set()
        """Users who blocked the bot: ``bot was blocked by the user``."""
        self.usernames: dict[str, int] = {}
        """Public ``@username`` chats the bot can write to."""
        self.outage = False
        self.outage_left = 0
        """Requests still to answer 502 (then the outage is over by itself)."""
        self.lose_next_confirmation = False
        """The next ``getUpdates`` offset confirms nothing (as if the call never arrived)."""
        self.reactions: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self._allowed: list[str] | None = None
        self._failures: dict[str, list[Failure]] = {}
        self._next_update = 500_000_001
        self._next_message: dict[int, int] = {}
        self._changed = asyncio.Event()
        self._poller = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 at a free port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        """End every long poll, close the webhook session, stop listening."""
        self._closing = True
        self._wake()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- test controls -----------------------------------------------------------------------

    def fail_next(
        self, method: str, code: int, description: str, *, count: int = 1, **parameters: Any
    ) -> None:
        """Answer the next ``count`` calls of ``method`` with this error (after their checks)."""
        for _ in range(count):
            self._failures.setdefault(method, []).append(Failure(code, description, **parameters))

    def flood(self, method: str, retry_after: int, count: int = 1) -> None:
        """Flood control on ``method``: 429 with ``retry_after`` seconds."""
        description = f"Too Many Requests: retry after {retry_after}"
        self.fail_next(method, 429, description, count=count, retry_after=retry_after)

    def disconnect(self, count: int) -> None:
        """The next ``count`` requests get a 502 (long polls waiting now end with one)."""
        self.outage_left = count
        self._wake()

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def add_file(
        self, data: bytes, mime_type: str, folder: str = "documents", filename: str | None = None
    ) -> tuple[str, Upload]:
        """Hold a file (a user's): its ``file_id``, and it."""
        file_id = "AgAC" + secrets.token_urlsafe(24)
        extension = EXTENSIONS.get(mime_type, "bin")
        path = f"{folder}/file_{len(self.files)}.{extension}"
        upload = Upload(data, mime_type, filename, path, "AQAD" + secrets.token_urlsafe(8))
        self.files[file_id] = upload
        return file_id, upload

    def file_object(
        self, data: bytes, mime_type: str, folder: str, filename: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """A ``Document``/``Video``/``Voice``/... object for a user's file."""
        file_id, upload = self.add_file(data, mime_type, folder, filename)
        found: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": upload.unique_id,
            "file_size": len(data),
            **extra,
        }
        if filename is not None:
            found["file_name"] = filename
        if folder not in ("photos", "stickers"):
            found["mime_type"] = mime_type
        return found

    def photo_sizes(self, data: bytes, mime_type: str) -> list[dict[str, Any]]:
        """A photo as Telegram sends it: a thumbnail first, then the full size (``data``)."""
        thumb_id, thumb = self.add_file(b"\xff\xd8\xff thumbnail", "image/jpeg", "photos")
        full_id, full = self.add_file(data, mime_type, "photos")
        return [
            {
                "file_id": thumb_id,
                "file_unique_id": thumb.unique_id,
                "file_size": len(thumb.data),
                "width": 90,
                "height": 90,
            },
            {
                "file_id": full_id,
                "file_unique_id": full.unique_id,
                "file_size": len(data),
                "width": 1280,
                "height": 1280,
            },
        ]

    def user_message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        """A message a user (or, for a negative id, a group member) sent in ``chat_id``."""
        message_id = self._message_id(chat_id)
        user_id = chat_id if chat_id > 0 else 6_000_000_001
        message = {
            "message_id": message_id,
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": "Cliente",
                "username": f"cliente{user_id % 10_000}",
                "language_code": "pt-br",
            },
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            **content,
        }
        self.messages[(chat_id, message_id)] = message
        return message

    def reaction_update(
        self, chat_id: int, message_id: int, new: list[str], old: list[str] | None = None
    ) -> dict[str, Any]:
        """A ``message_reaction`` update: a user's reactions on a message changed."""
        return self.update(
            message_reaction={
                "chat": self._chat(chat_id),
                "message_id": message_id,
                "user": {"id": chat_id, "is_bot": False, "first_name": "Cliente"},
                "date": int(time.time()),
                "old_reaction": [{"type": "emoji", "emoji": e} for e in old or []],
                "new_reaction": [{"type": "emoji", "emoji": e} for e in new],
            }
        )

    def update(self, **content: Any) -> dict[str, Any]:
        """An update with the next id."""
        update = {"update_id": self._next_update, **content}
        self._next_update += 1
        return update

    def queue(self, update: dict[str, Any]) -> None:
        """Make ``update`` wait for ``getUpdates``."""
        self._pending.append(update)
        self._wake()

    async def push(self, update: dict[str, Any]) -> int | None:
        """Deliver ``update`` the way the bot gets updates now: POSTed to its webhook (the
        answer's status), or queued for ``getUpdates`` (None)."""
        if self.webhook is None:
            self.queue(update)
            return None
        return await self.post(update)

    async def post(self, update: dict[str, Any], *, secret: str | None = None) -> int:
        """POST ``update`` to the webhook with its secret token (or ``secret``; ``""``: no
        header); the answer's status."""
        assert self.webhook is not None, "no webhook is set"
        headers = {"Content-Type": "application/json"}
        token = self.webhook.secret_token if secret is None else secret
        if token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = json.dumps(update, ensure_ascii=False).encode()
        async with self._session.post(self.webhook.url, data=body, headers=headers) as answer:
            await answer.read()
            return answer.status

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed."""
        return list(self._pending)

    # --- plumbing ----------------------------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _message_id(self, chat_id: int) -> int:
        self._next_message[chat_id] = self._next_message.get(chat_id, 0) + 1
        return self._next_message[chat_id]

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id > 0:
            return {"id": chat_id, "first_name": "Cliente", "type": "private"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "title": "Grupo", "type": kind}

    def _me(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _outage(self) -> web.Response | None:
        if self.outage_left > 0:
            self.outage_left -= 1
            return web.json_response(failure_body(502, "Bad Gateway"), status=502)
        if self.outage:
            return web.json_response(failure_body(502, "Bad Gateway"), status=502)
        return None

    async def _method(self, request: web.Request) -> web.Response:
        self.requests += 1
        down = self._outage()
        if down is not None:
            return down
        token, method = request.match_info["token"], request.match_info["method"]
        if not TOKEN.fullmatch(token):
            return web.json_response(failure_body(404, "Not Found"), status=404)
        if token != self.token:
            return web.json_response(failure_body(401, "Unauthorized"), status=401)
        spec = SPECS.get(method)
        if spec is None:
            self.problems.append(f"{request.method} {method}: no such method (or not exact case)")
            return web.json_response(failure_body(404, "Not Found"), status=404)
        call = Call(method, {}, {}, time.monotonic())
        self.calls.append(call)
        try:
            params, files, call.encoding = await self._read(request, spec)
            call.params, call.files = params, files
            self._check(method, spec, params, files)
            scripted = self._failures.get(method)
            if scripted:
                raise scripted.pop(0)
            call.result = await self._answer(method, params, files)
        except Refused as refused:
            self.problems.append(f"{method}: {refused}")
            return web.json_response(failure_body(400, f"Bad Request: {refused}"), status=400)
        except Failure as failure:
            body = failure_body(failure.code, failure.description, **failure.parameters)
            return web.json_response(body, status=failure.code)
        return web.json_response({"ok": True, "result": call.result})

    async def _file(self, request: web.Request) -> web.Response:
        self.requests += 1
        down = self._outage()
        if down is not None:
            return down
        if request.match_info["token"] != self.token:
            return web.json_response(failure_body(404, "Not Found"), status=404)
        path = request.match_info["path"]
        found = next((f for f in self.files.values() if f.path == path), None)
        if found is None:
            return web.json_response(failure_body(404, "Not Found"), status=404)
        return web.Response(body=found.data, content_type="application/octet-stream")

    # --- reading a request -------------------------------------------------------------------

    async def _read(
        self, request: web.Request, spec: _Spec
    ) -> tuple[dict[str, Any], dict[str, Upload], str]:
        """The parameters (typed), the uploaded files, and how they came."""
        if request.method == "GET":
            return self._typed_form(dict(request.query), spec), {}, "query"
        if request.method != "POST":
            raise Refused(f"HTTP {request.method}: the Bot API takes GET and POST")
        kind = request.content_type
        if kind == "application/json":
            try:
                body = json.loads(await request.read())
            except ValueError as error:
                raise Refused(f"the body is not JSON: {error}") from None
            if not isinstance(body, dict):
                raise Refused("the JSON body must be an object")
            return body, {}, "json"
        if kind == "application/x-www-form-urlencoded":
            form = await request.post()
            return self._typed_form({k: str(v) for k, v in form.items()}, spec), {}, "form"
        if kind == "multipart/form-data":
            return await self._multipart(request, spec)
        if not await request.read():
            return {}, {}, "query"
        raise Refused(f"content type {kind!r}: JSON, a form, or multipart/form-data")

    async def _multipart(
        self, request: web.Request, spec: _Spec
    ) -> tuple[dict[str, Any], dict[str, Upload], str]:
        fields: dict[str, str] = {}
        files: dict[str, Upload] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader):
                raise Refused("a nested multipart body")
            name = part.name
            if not name:
                raise Refused("a form part without a name")
            if name in fields or name in files:
                raise Refused(f"{name} is given twice")
            data = await part.read()
            if part.filename is not None:
                if name not in spec.files:
                    raise Refused(f"{name} is not a file parameter")
                mime = part.headers.get("Content-Type", "application/octet-stream")
                files[name] = Upload(bytes(data), mime.split(";")[0].strip(), part.filename, "", "")
            else:
                fields[name] = bytes(data).decode("utf-8")
        return self._typed_form(fields, spec), files, "multipart"

    def _typed_form(self, fields: dict[str, str], spec: _Spec) -> dict[str, Any]:
        """Form fields (all text) as the types their parameters have (JSON for the rest)."""
        typed: dict[str, Any] = {}
        for name, text in fields.items():
            kind = spec.params.get(name, ("str", False))[0]
            typed[name] = self._from_text(name, text, kind)
        return typed

    @staticmethod
    def _from_text(name: str, text: str, kind: str) -> Any:
        try:
            if kind == "int":
                if not re.fullmatch(r"-?[0-9]+", text):
                    raise ValueError
                return int(text)
            if kind == "float":
                return float(text)
            if kind == "bool":
                if text not in ("true", "false", "True", "False", "1", "0"):
                    raise ValueError
                return text in ("true", "True", "1")
            if kind == "chat":
                return int(text) if re.fullmatch(r"-?[0-9]+", text) else text
            if kind in ("array", "object"):
                return json.loads(text)
        except ValueError:
            raise Refused(f"{name} is not a valid {kind}: {text[:60]!r}") from None
        return text

    # --- checking parameters -----------------------------------------------------------------

    def _check(
        self, method: str, spec: _Spec, params: dict[str, Any], files: dict[str, Upload]
    ) -> None:
        given = params.keys() | files.keys()
        required = {name for name, (_, needed) in spec.params.items() if needed}
        _keys(dict.fromkeys(given), f"{method}'s parameters", required, set(spec.params))
        for name, value in params.items():
            self._check_type(name, value, spec.params[name][0])
        if "caption" in params:
            _text(params["caption"], "caption", 0, 1024)
        if "parse_mode" in params and params["parse_mode"] not in (
            "HTML",
            "Markdown",
            "MarkdownV2",
        ):
            raise Refused("parse_mode must be HTML, Markdown or MarkdownV2")
        if "reply_parameters" in params:
            self._check_reply(params["reply_parameters"])
        if "link_preview_options" in params:
            options = params["link_preview_options"]
            booleans = {
                "is_disabled",
                "prefer_small_media",
                "prefer_large_media",
                "show_above_text",
            }
            _keys(options, "link_preview_options", set(), booleans | {"url"})
            for key in booleans & options.keys():
                self._check_type(f"link_preview_options.{key}", options[key], "bool")

    def _check_type(self, name: str, value: Any, kind: str) -> None:
        fine = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "array": isinstance(value, list),
            "object": isinstance(value, dict),
            "chat": (isinstance(value, int) and not isinstance(value, bool))
            or (isinstance(value, str) and bool(re.fullmatch(r"-?[0-9]+", value)))
            or (isinstance(value, str) and bool(USERNAME.fullmatch(value))),
            "file": isinstance(value, str) and bool(value),  # a file_id or URL
        }[kind]
        if not fine:
            raise Refused(f"{name} must be {kind}, got {value!r}"[:200])

    def _check_reply(self, reply: dict[str, Any]) -> None:
        optional = {
            "chat_id",
            "allow_sending_without_reply",
            "quote",
            "quote_parse_mode",
            "quote_entities",
            "quote_position",
            "checklist_task_id",
        }
        _keys(reply, "reply_parameters", {"message_id"}, optional)
        self._check_type("reply_parameters.message_id", reply["message_id"], "int")
        if "chat_id" in reply:
            self._check_type("reply_parameters.chat_id", reply["chat_id"], "chat")

    def _chat_id(self, value: int | str) -> int:
        """The chat a ``chat_id`` names; ``chat not found`` or ``blocked`` as Telegram says."""
        if isinstance(value, str) and value.startswith("@"):
            if value not in self.usernames:
                raise Failure(400, "Bad Request: chat not found")
            return self.usernames[value]
        chat = int(value)
        if chat in self.missing_chats or chat == 0:
            raise Failure(400, "Bad Request: chat not found")
        if chat in self.blocked:
            raise Failure(403, "Forbidden: bot was blocked by the user")
        return chat

    # --- answering ---------------------------------------------------------------------------

    async def _answer(self, method: str, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        if method == "getMe":
            return self._me()
        if method == "getUpdates":
            return await self._updates(params)
        if method in ("setWebhook", "deleteWebhook", "getWebhookInfo"):
            return self._webhook(method, params)
        if method == "getFile":
            return self._get_file(params["file_id"])
        chat = self._chat_id(params["chat_id"]) if "chat_id" in params else 0
        if method == "setMessageReaction":
            return self._react(chat, params)
        if method == "editMessageText":
            return self._edit(chat, params)
        if method == "deleteMessage":
            self._known_message(chat, params["message_id"], "message to delete not found")
            self.messages.pop((chat, params["message_id"]))
            return True
        if method == "sendChatAction":
            if params["action"] not in CHAT_ACTIONS:
                raise Refused(f"action {params['action']!r} is not a chat action")
            return True
        return self._send(method, chat, params, files)

    def _webhook(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getWebhookInfo":
            hook = self.webhook
            info: dict[str, Any] = {
                "url": hook.url if hook else "",
                "has_custom_certificate": False,
                "pending_update_count": len(self._pending),
            }
            if hook and hook.allowed_updates is not None:
                info["allowed_updates"] = hook.allowed_updates
            return info
        if params.get("drop_pending_updates"):
            self._pending.clear()
        if method == "deleteWebhook":
            self.webhook = None
            return True
        url = params["url"]
        if url == "":
            self.webhook = None
            return True
        if not re.fullmatch(r"https?://[^/?#\s]+(/[^#\s]*)?", url) or len(url) > 2048:
            raise Failure(400, "Bad Request: bad webhook: invalid webhook URL specified")
        secret = params.get("secret_token")
        if secret is not None and not SECRET.fullmatch(secret):
            raise Refused("secret_token must be 1-256 of A-Z, a-z, 0-9, _ and -")
        allowed = params.get("allowed_updates")
        if allowed is not None:
            self._check_allowed(allowed)
        connections = params.get("max_connections", 40)
        if not 1 <= connections <= 100:
            raise Refused("max_connections must be 1..100")
        self.webhook = Webhook(url, secret, allowed, connections)
        if allowed is not None:
            self._allowed = allowed
        self._wake()
        return True

    def _check_allowed(self, allowed: list[Any]) -> None:
        unknown = [kind for kind in allowed if kind not in UPDATE_TYPES]
        if unknown:
            raise Refused(f"allowed_updates names unknown update types {unknown}")

    async def _updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise Failure(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        limit, wait = params.get("limit", 100), params.get("timeout", 0)
        if not 1 <= limit <= 100:
            raise Refused("limit must be 1..100")
        if wait < 0:
            raise Refused("timeout must not be negative")
        if "allowed_updates" in params:
            self._check_allowed(params["allowed_updates"])
            self._allowed = params["allowed_updates"]
        offset = params.get("offset")
        if offset is not None and offset > 0:
            if self.lose_next_confirmation:
                self.lose_next_confirmation = False
            else:
                self._pending = [u for u in self._pending if u["update_id"] >= offset]
        self._poller += 1
        mine = self._poller
        self._wake()  # an earlier long poll is ended by this one
        deadline = time.monotonic() + wait
        while True:
            if mine != self._poller:
                raise Failure(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
            ready = [
                u
                for u in self._pending
                if (offset is None or offset <= 0 or u["update_id"] >= offset) and self._wanted(u)
            ]
            if ready or self._closing:
                return ready[:limit]
            if self.outage_left > 0 or self.outage:
                raise Failure(502, "Bad Gateway")
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await changed.wait()

    def _wanted(self, update: dict[str, Any]) -> bool:
        kind = next((key for key in update if key != "update_id"), "")
        if self._allowed:
            return kind in self._allowed
        return kind not in NOT_BY_DEFAULT

    def _get_file(self, file_id: str) -> dict[str, Any]:
        found = self.files.get(file_id)
        if found is None:
            raise Failure(400, "Bad Request: invalid file_id")
        described: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": found.unique_id,
            "file_size": len(found.data),
        }
        if len(found.data) > DOWNLOAD_MAX:
            raise Failure(400, "Bad Request: file is too big")
        described["file_path"] = found.path
        return described

    def _known_message(self, chat: int, message_id: int, missing: str) -> dict[str, Any]:
        found = self.messages.get((chat, message_id))
        if found is None:
            raise Failure(400, f"Bad Request: {missing}")
        return found

    def _react(self, chat: int, params: dict[str, Any]) -> bool:
        self._known_message(chat, params["message_id"], "message to react not found")
        reaction = params.get("reaction", [])
        if len(reaction) > 1:
            raise Failure(400, "Bad Request: REACTIONS_TOO_MANY")
        for item in reaction:
            if not isinstance(item, dict) or item.get("type") not in ("emoji", "custom_emoji"):
                raise Refused(f"reaction items must be ReactionType objects, got {item!r}")
            if item["type"] == "emoji":
                _keys(item, "ReactionTypeEmoji", {"type", "emoji"}, set())
                if item["emoji"] not in REACTIONS:
                    raise Refused(f"REACTION_INVALID: {item['emoji']!r} is not a reaction")
            else:
                _keys(item, "ReactionTypeCustomEmoji", {"type", "custom_emoji_id"}, set())
        self.reactions.append({"chat": chat, **params})
        return True

    def _edit(self, chat: int, params: dict[str, Any]) -> dict[str, Any]:
        if "chat_id" not in params or "message_id" not in params:
            raise Refused("editMessageText needs chat_id and message_id (or inline_message_id)")
        message = self._known_message(chat, params["message_id"], "message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id or "text" not in message:
            raise Failure(400, "Bad Request: message can't be edited")
        text = _text(params["text"], "text", 1, 4096)
        if text == message["text"]:
            raise Failure(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        message["text"] = text
        message["edit_date"] = int(time.time())
        return message

    def _send(
        self, method: str, chat: int, params: dict[str, Any], files: dict[str, Upload]
    ) -> dict[str, Any]:
        content: dict[str, Any] = {}
        if method == "sendMessage":
            content["text"] = _text(params["text"], "text", 1, 4096)
            if "link_preview_options" in params:
                content["link_preview_options"] = params["link_preview_options"]
        elif method in FILE_METHODS:
            content.update(self._sent_file(FILE_METHODS[method], params, files))
        elif method == "sendLocation":
            content["location"] = self._point(params)
        elif method == "sendVenue":
            point = self._point(params)
            _text(params["title"], "title", 1, 256)
            content["location"] = point
            content["venue"] = {
                "location": point,
                "title": params["title"],
                "address": params["address"],
            }
        elif method == "sendContact":
            _text(params["phone_number"], "phone_number", 1, 64)
            _text(params["first_name"], "first_name", 1, 64)
            contact = {"phone_number": params["phone_number"], "first_name": params["first_name"]}
            for key in ("last_name", "vcard"):
                if key in params:
                    contact[key] = _text(params[key], key, 0, 2048)
            content["contact"] = contact
        if "reply_parameters" in params:
            reply = params["reply_parameters"]
            replied_chat = int(reply.get("chat_id", chat))
            found = self.messages.get((replied_chat, reply["message_id"]))
            if found is None and not reply.get("allow_sending_without_reply"):
                raise Failure(400, "Bad Request: message to be replied not found")
            if found is not None:
                content["reply_to_message"] = found
        message_id = self._message_id(chat)
        message = {
            "message_id": message_id,
            "from": {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": self.first_name,
                "username": self.username,
            },
            "chat": self._chat(chat),
            "date": int(time.time()),
            **content,
        }
        self.messages[(chat, message_id)] = message
        return message

    def _point(self, params: dict[str, Any]) -> dict[str, float]:
        latitude, longitude = params["latitude"], params["longitude"]
        if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
            raise Refused("latitude must be within ±90, longitude within ±180")
        return {"latitude": latitude, "longitude": longitude}

    def _sent_file(
        self, kind: str, params: dict[str, Any], files: dict[str, Upload]
    ) -> dict[str, Any]:
        """The message's file object, once its upload (or file_id) passed the checks."""
        upload = files.get(kind)
        if upload is None:
            known = self.files.get(params.get(kind, ""))
            if known is None:
                raise Failure(400, "Bad Request: wrong file identifier/HTTP URL specified")
            upload = known
        elif not upload.data:
            raise Refused(f"{kind} is an empty file")
        elif not upload.mime_type.startswith(FILE_TYPES[kind]):
            raise Refused(f"{kind} cannot be {upload.mime_type} ({', '.join(FILE_TYPES[kind])})")
        limit = PHOTO_MAX if kind == "photo" else FILE_MAX
        if len(upload.data) > limit:
            raise Failure(400, "Bad Request: file is too big")
        folder = {"photo": "photos", "sticker": "stickers", "voice": "voice"}.get(kind, kind + "s")
        file_id, held = self.add_file(upload.data, upload.mime_type, folder, upload.filename)
        item = {"file_id": file_id, "file_unique_id": held.unique_id, "file_size": len(upload.data)}
        content: dict[str, Any] = {}
        if kind == "photo":
            content["photo"] = [{**item, "width": 1280, "height": 1280}]
        else:
            if kind in ("document", "audio", "video") and upload.filename:
                item["file_name"] = upload.filename
            if kind != "sticker":
                item["mime_type"] = upload.mime_type
            else:
                item |= {"type": "regular", "width": 512, "height": 512, "is_animated": False}
                item["is_video"] = upload.mime_type == "video/webm"
            content[kind] = item
        if params.get("caption"):
            if kind == "sticker":
                raise Refused("a sticker has no caption")
            content["caption"] = params["caption"]
        return content


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[FakeTelegram]:
    """A started fake, stopped on the way out."""
    fake = FakeTelegram(**options)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
