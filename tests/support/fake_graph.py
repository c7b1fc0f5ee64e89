"""A strict local fake of Meta's WhatsApp Business Cloud API (the Graph API) on 127.0.0.1.

It answers the few routes the ``cloudapi`` engine uses, shaped as Meta documents them, and refuses
what Meta would refuse: every request refused as malformed is answered ``(#100) Invalid parameter``
and recorded in :attr:`FakeGraph.problems`, so a test can assert the engine sent nothing wrong.
Legitimate errors (a bad token, an unknown template, injected failures, an outage) are not problems.

Webhook callbacks (inbound messages, statuses) are enveloped, signed with the app secret
(``X-Hub-Signature-256``) and handed to :attr:`FakeGraph.callback`. Their JSON escapes non-ASCII
and ``/`` as Meta's does, so a receiver must verify the raw bytes, never a re-serialisation.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

WABA_ID = "104996122399160"
MESSAGE_TYPES = frozenset(
    {"text", "image", "video", "audio", "document", "sticker", "location", "contacts"}
    | {"reaction", "interactive", "template"}
)
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
TITLES = {
    2: "Service temporarily unavailable",
    130429: "Rate limit hit",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    133010: "Phone number not registered",
}
"""Meta's titles for a few error codes (the message of an error is ``(#CODE) title``)."""
PHONE = re.compile(r"\+?\d{8,15}")
MIME = re.compile(r"[\w.+-]+/[\w.+-]+")
TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
PARAMETER_TYPES = frozenset(
    {"text", "currency", "date_time", "image", "document", "video", "payload"}
)
BUTTON_SUB_TYPES = frozenset({"quick_reply", "url", "copy_code", "flow", "catalog", "voice_call"})


@dataclass
class Sent:
    """One accepted ``POST /{v}/{phone_number_id}/messages``."""

    payload: dict[str, Any]
    at: float
    """``time.monotonic()`` at arrival."""
    wamid: str
    """The id answered (``""`` for a mark-as-read request)."""


@dataclass
class Upload:
    """Media bytes the fake holds (uploaded by the engine, or added as inbound media)."""

    data: bytes
    mime_type: str
    filename: str | None


class Refused(Exception):
    """A request Meta would refuse as malformed: a problem, answered ``(#100)``."""


class GraphFailure(Exception):
    """A legitimate Graph error answer (not a problem)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def graph_error(
    status: int, code: int, message: str, details: str | None = None, **extra: Any
) -> web.Response:
    """A Graph error answer: ``{"error": {message, type, code, [error_data], ..., fbtrace_id}}``."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error.update(extra)
    error["fbtrace_id"] = secrets.token_urlsafe(18)[:23]
    return web.json_response({"error": error}, status=status)


# --- validation helpers: each raises Refused naming where the fault is -----------------------


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refused(f"{where} must be an object")
    return value


def _keys(obj: dict[str, Any], where: str, required: set[str], optional: set[str]) -> None:
    if missing := sorted(required - obj.keys()):
        raise Refused(f"{where} lacks {', '.join(missing)}")
    if unknown := sorted(obj.keys() - required - optional):
        raise Refused(f"{where} has unknown key(s) {', '.join(unknown)}")


def _str(value: Any, where: str, low: int = 0, high: int = 1_000_000) -> str:
    if not isinstance(value, str):
        raise Refused(f"{where} must be a string")
    if not low <= len(value) <= high:
        raise Refused(f"{where} must have {low}..{high} characters, has {len(value)}")
    return value


def _list(value: Any, where: str, low: int, high: int) -> list[Any]:
    if not isinstance(value, list):
        raise Refused(f"{where} must be a list")
    if not low <= len(value) <= high:
        raise Refused(f"{where} must have {low}..{high} items, has {len(value)}")
    return value


def _number(value: Any, where: str, limit: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > limit:
        raise Refused(f"{where} must be a number within ±{limit}")


def _wamid(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value.startswith("wamid.") or len(value) < 10:
        raise Refused(f"{where} must be a message id (wamid.…)")


def _link(value: Any, where: str) -> None:
    parts = urlsplit(_str(value, where, 1, 2048))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Refused(f"{where} must be an http(s) URL")


class FakeGraph:
    """Meta's Cloud API for one phone number, on ``127.0.0.1:<random port>``.

    ``url`` is the engine's base URL (it appends ``/{version}/...``). ``templates`` maps the
    approved template names to their number of body parameters.
    """

    def __init__(
        self,
        *,
        phone_number_id: str = "106540352242922",
        access_token: str = "EAAG-test-token",
        app_secret: str = "fake-app-secret",
        version: str = "v24.0",
        display_phone_number: str = "+55 11 95555-0100",
        verified_name: str = "Zapgate Test",
    ) -> None:
        self.phone_number_id = phone_number_id
        self.access_token = access_token
        self.app_secret = app_secret
        self.version = version
        self.display_phone_number = display_phone_number
        self.verified_name = verified_name
        self.waba_id = WABA_ID
        self.url = ""
        self.sends: list[Sent] = []
        self.uploads: dict[str, Upload] = {}
        self.inbound_media: dict[str, Upload] = {}
        self.problems: list[str] = []
        self.requests = 0
        self.outage = False
        self.outage_left = 0
        """Requests still to answer with an outage's 500 (then it is over by itself)."""
        self.auto_status = True
        self.status_delay = 0.01
        """Seconds before the first status callback of a send (its answer goes out first)."""
        self.callback: Callable[[bytes, dict[str, str]], Awaitable[int]] | None = None
        self.callback_errors: list[str] = []
        self.templates: dict[str, int] = {"hello_world": 0, "order_update": 2}
        self._failures: list[web.Response] = []
        self._categories: dict[str, str] = {}
        self._opaque: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 at a free port."""
        app = web.Application(middlewares=[self._gate], client_max_size=128 * 1024 * 1024)
        app.router.add_get("/download/{media_id}", self._download)
        app.router.add_get("/{version}/{id}", self._get_node)
        app.router.add_post("/{version}/{id}/messages", self._messages)
        app.router.add_post("/{version}/{id}/media", self._media)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        """Cancel pending status callbacks, close the callback session, stop listening."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def drain(self) -> None:
        """Wait until every pending status callback went out."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- test controls -----------------------------------------------------------------------

    def post_to(self, url: str) -> None:
        """Send callbacks as HTTP POSTs to ``url``."""

        async def post(body: bytes, headers: dict[str, str]) -> int:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            async with self._session.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status

        self.callback = post

    def fail_sends(
        self,
        code: int,
        *,
        count: int = 1,
        http_status: int = 400,
        message: str = "",
        details: str = "",
    ) -> None:
        """Answer the next ``count`` message sends (not mark-as-read) with this Meta error.

        ``message`` is the title (default: Meta's for ``code``); the answer's message is
        ``(#CODE) title``. ``details`` defaults to the title.
        """
        title = message or TITLES.get(code, "Unknown error")
        text = title if title.startswith("(#") else f"(#{code}) {title}"
        for _ in range(count):
            self._failures.append(graph_error(http_status, code, text, details or title))

    def add_media(self, data: bytes, mime_type: str, filename: str | None = None) -> str:
        """Register inbound media (as a customer's message would carry); returns its id."""
        media_id = self._media_id()
        self.inbound_media[media_id] = Upload(data, mime_type, filename)
        return media_id

    def sign(self, body: bytes, secret: str | None = None) -> str:
        """``sha256=`` + hex HMAC-SHA256 of ``body`` with the app secret (or ``secret``)."""
        key = (self.app_secret if secret is None else secret).encode()
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    def envelope(self, value: dict[str, Any], field: str = "messages") -> bytes:
        """The webhook body for one change, as compact JSON escaped the way Meta's is."""
        body = {
            "object": "whatsapp_business_account",
            "entry": [{"id": self.waba_id, "changes": [{"value": value, "field": field}]}],
        }
        return json.dumps(body, separators=(",", ":")).replace("/", "\\/").encode()

    async def deliver(self, value: dict[str, Any], *, signature: str | None = None) -> int:
        """POST one change through :attr:`callback` (signed unless ``signature``); its status."""
        if self.callback is None:
            raise RuntimeError("FakeGraph.callback is not set (see post_to)")
        body = self.envelope(value)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "facebookexternalua",
            "X-Hub-Signature-256": self.sign(body) if signature is None else signature,
        }
        return await self.callback(body, headers)

    def inbound_value(
        self, message: dict[str, Any], *, name: str = "Cliente", wa_id: str | None = None
    ) -> dict[str, Any]:
        """A ``changes[].value`` for one inbound message (``id``/``timestamp`` filled if absent)."""
        message = {"id": self.new_wamid(), "timestamp": str(int(time.time())), **message}
        return {
            "messaging_product": "whatsapp",
            "metadata": self._metadata(),
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id or message["from"]}],
            "messages": [message],
        }

    def status_value(
        self,
        wamid: str,
        status: str,
        recipient: str,
        errors: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A ``changes[].value`` with one status of ``wamid`` (pricing with sent/delivered)."""
        now = int(time.time())
        entry: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(now),
            "recipient_id": recipient.lstrip("+"),
        }
        if wamid in self._opaque:
            entry["biz_opaque_callback_data"] = self._opaque[wamid]
        if status in ("sent", "delivered"):
            category = self._categories.get(wamid, "service")
            billable = category != "service"
            if self._major() < 24:  # v24.0+ omits the conversation object (per-message pricing)
                conversation: dict[str, Any] = {"id": hashlib.md5(recipient.encode()).hexdigest()}
                if status == "sent":
                    conversation["expiration_timestamp"] = str(now + 86400)
                conversation["origin"] = {"type": category}
                entry["conversation"] = conversation
            entry["pricing"] = {
                "billable": billable,
                "pricing_model": "PMP",
                "type": "regular" if billable else "free_customer_service",
                "category": category,
            }
        if status == "failed":
            entry["errors"] = errors or [
                {
                    "code": 131026,
                    "title": "Message undeliverable",
                    "message": "Message undeliverable",
                    "error_data": {"details": "Message Undeliverable."},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }
            ]
        elif errors:
            entry["errors"] = errors
        return {"messaging_product": "whatsapp", "metadata": self._metadata(), "statuses": [entry]}

    @staticmethod
    def new_wamid() -> str:
        """A message id shaped like Meta's (``wamid.HBgN…``)."""
        digits = "55119" + "".join(secrets.choice("0123456789") for _ in range(8))
        raw = (
            b"\x1c\x18\x0d"
            + digits.encode()
            + b"\x15\x02\x00\x11\x18\x12"
            + secrets.token_hex(9).upper().encode()
            + b"\x00"
        )
        return "wamid." + base64.urlsafe_b64encode(raw).decode()

    # --- plumbing ----------------------------------------------------------------------------

    def _metadata(self) -> dict[str, str]:
        digits = re.sub(r"\D", "", self.display_phone_number)
        return {"display_phone_number": digits, "phone_number_id": self.phone_number_id}

    def _major(self) -> int:
        match = re.fullmatch(r"v(\d+)\.\d+", self.version)
        return int(match.group(1)) if match else 0

    def _media_id(self) -> str:
        return str(10**15 + secrets.randbelow(9 * 10**15))

    @web.middleware
    async def _gate(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Counts, simulates an outage, checks the token, turns refusals into answers."""
        self.requests += 1
        if self.outage_left > 0:
            self.outage_left -= 1
            return graph_error(500, 2, "(#2) Service temporarily unavailable", is_transient=True)
        if self.outage:
            return graph_error(500, 2, "(#2) Service temporarily unavailable", is_transient=True)
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        try:
            version = request.match_info.get("version")
            if version is not None and version != self.version:
                raise Refused(f"version {version!r}, configured {self.version!r}")
            return await handler(request)
        except Refused as refused:
            self.problems.append(f"{request.method} {request.path}: {refused}")
            return graph_error(400, 100, "(#100) Invalid parameter", str(refused))
        except GraphFailure as failure:
            return failure.response
        except web.HTTPException as exc:
            if exc.status not in (404, 405):
                raise
            self.problems.append(f"{request.method} {request.path}: no such route")
            return graph_error(400, 100, "Unknown path components: " + request.path)

    def _known(self, media_id: str) -> Upload | None:
        return self.uploads.get(media_id) or self.inbound_media.get(media_id)

    # --- routes ------------------------------------------------------------------------------

    async def _get_node(self, request: web.Request) -> web.Response:
        node = request.match_info["id"]
        if node == self.phone_number_id:
            return self._phone(request.query.get("fields"))
        media = self._known(node)
        if media is None:
            raise GraphFailure(
                graph_error(
                    400,
                    100,
                    f"Unsupported get request. Object with ID '{node}' does not exist, cannot be "
                    "loaded due to missing permissions, or does not support this operation.",
                    error_subcode=33,
                )
            )
        if request.query.get("phone_number_id", self.phone_number_id) != self.phone_number_id:
            raise Refused("phone_number_id query names another phone number")
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/download/{node}?ext=1",
                "mime_type": media.mime_type,
                "sha256": hashlib.sha256(media.data).hexdigest(),
                "file_size": len(media.data),
                "id": node,
            }
        )

    def _phone(self, fields: str | None) -> web.Response:
        every: dict[str, Any] = {
            "verified_name": self.verified_name,
            "display_phone_number": self.display_phone_number,
            "quality_rating": "GREEN",
            "code_verification_status": "VERIFIED",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
        }
        if fields is not None:
            wanted = [name.strip() for name in fields.split(",") if name.strip()]
            if unknown := [name for name in wanted if name not in every and name != "id"]:
                raise Refused(f"nonexisting field(s) {', '.join(unknown)} on a phone number")
            every = {name: every[name] for name in wanted if name in every}
        return web.json_response({**every, "id": self.phone_number_id})

    async def _download(self, request: web.Request) -> web.Response:
        media = self._known(request.match_info["media_id"])
        if media is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=media.data, content_type=media.mime_type)

    async def _media(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.phone_number_id:
            raise Refused(f"unknown phone number id {request.match_info['id']}")
        if request.content_type != "multipart/form-data":
            raise Refused(f"content type {request.content_type!r}, not multipart/form-data")
        form = await request.post()
        _keys(dict(form), "the form", {"messaging_product", "type", "file"}, set())
        if form["messaging_product"] != "whatsapp":
            raise Refused("messaging_product must be 'whatsapp'")
        mime = form["type"]
        if not isinstance(mime, str) or not MIME.fullmatch(mime):
            raise Refused(f"type must be a MIME type, got {mime!r}")
        part = form["file"]
        if not isinstance(part, web.FileField):
            raise Refused("file must be a file part (with a filename)")
        data = part.file.read()
        if not data:
            raise Refused("file is empty")
        media_id = self._media_id()
        self.uploads[media_id] = Upload(data, mime, part.filename or None)
        return web.json_response({"id": media_id})

    async def _messages(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        if request.match_info["id"] != self.phone_number_id:
            raise Refused(f"unknown phone number id {request.match_info['id']}")
        if request.content_type != "application/json":
            raise Refused(f"content type {request.content_type!r}, not application/json")
        try:
            payload = _obj(json.loads(await request.read()), "the body")
        except ValueError as exc:
            raise Refused(f"the body is not JSON: {exc}") from exc
        if "status" in payload:
            _keys(
                payload,
                "a mark-as-read",
                {"messaging_product", "status", "message_id"},
                {"typing_indicator"},
            )
            if payload["messaging_product"] != "whatsapp" or payload["status"] != "read":
                raise Refused("a mark-as-read needs messaging_product whatsapp and status read")
            _wamid(payload["message_id"], "message_id")
            if "typing_indicator" in payload and payload["typing_indicator"] != {"type": "text"}:
                raise Refused('typing_indicator must be {"type": "text"}')
            self.sends.append(Sent(payload, at, ""))
            return web.json_response({"success": True})
        kind = self._check_message(payload)
        if kind == "template":
            self._check_template_known(payload["template"])
        if self._failures:
            raise GraphFailure(self._failures.pop(0))
        wamid = self.new_wamid()
        self.sends.append(Sent(payload, at, wamid))
        wa_id = payload["to"].lstrip("+")
        if kind == "template":
            self._categories[wamid] = "utility"
        if "biz_opaque_callback_data" in payload:
            self._opaque[wamid] = payload["biz_opaque_callback_data"]
        if self.auto_status and self.callback is not None:
            task = asyncio.create_task(self._statuses(wamid, wa_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        message: dict[str, str] = {"id": wamid}
        if kind == "template":
            message["message_status"] = "accepted"
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": payload["to"], "wa_id": wa_id}],
                "messages": [message],
            }
        )

    async def _statuses(self, wamid: str, recipient: str) -> None:
        await asyncio.sleep(self.status_delay)
        for status in ("sent", "delivered", "read"):
            try:
                await self.deliver(self.status_value(wamid, status, recipient))
            except Exception as exc:  # a test callback may fail any way: keep it, go on
                self.callback_errors.append(f"{status} of {wamid}: {exc!r}")

    # --- message validation ------------------------------------------------------------------

    def _check_message(self, payload: dict[str, Any]) -> str:
        """Validates a message send; returns its type."""
        raw = payload.get("type")
        if raw not in MESSAGE_TYPES:
            raise Refused(f"type must be one of {sorted(MESSAGE_TYPES)}, got {raw!r}")
        kind: str = raw
        _keys(
            payload,
            "the body",
            {"messaging_product", "to", "type", kind},
            {"recipient_type", "context", "biz_opaque_callback_data"},
        )
        if payload["messaging_product"] != "whatsapp":
            raise Refused("messaging_product must be 'whatsapp'")
        if payload.get("recipient_type", "individual") != "individual":
            raise Refused("recipient_type must be 'individual'")
        if not isinstance(payload["to"], str) or not PHONE.fullmatch(payload["to"]):
            raise Refused(f"to must be 8..15 digits, got {payload['to']!r}")
        if "context" in payload:
            context = _obj(payload["context"], "context")
            _keys(context, "context", {"message_id"}, set())
            _wamid(context["message_id"], "context.message_id")
        if "biz_opaque_callback_data" in payload:
            _str(payload["biz_opaque_callback_data"], "biz_opaque_callback_data", 1, 512)
        if kind == "contacts":
            self._check_contacts(payload[kind])
        elif kind in MEDIA_TYPES:
            self._check_media(_obj(payload[kind], kind), kind)
        else:
            checks: dict[str, Callable[[dict[str, Any]], None]] = {
                "text": self._check_text,
                "location": self._check_location,
                "reaction": self._check_reaction,
                "interactive": self._check_interactive,
                "template": self._check_template,
            }
            checks[kind](_obj(payload[kind], kind))
        return kind

    def _check_text(self, text: dict[str, Any]) -> None:
        _keys(text, "text", {"body"}, {"preview_url"})
        _str(text["body"], "text.body", 1, 4096)
        if not isinstance(text.get("preview_url", False), bool):
            raise Refused("text.preview_url must be a boolean")

    def _check_media(self, media: dict[str, Any], kind: str) -> None:
        optional = {"id", "link"}
        if kind in ("image", "video", "document"):
            optional.add("caption")
        if kind == "document":
            optional.add("filename")
        if kind == "audio":
            optional.add("voice")
            if not isinstance(media.get("voice", False), bool):
                raise Refused("audio.voice must be a boolean")
        _keys(media, kind, set(), optional)
        if ("id" in media) == ("link" in media):
            raise Refused(f"{kind} needs exactly one of id and link")
        if "id" in media and media["id"] not in self.uploads:
            raise Refused(f"{kind}.id {media['id']!r} is no uploaded media")
        if "link" in media:
            _link(media["link"], f"{kind}.link")
        if "caption" in media:
            _str(media["caption"], f"{kind}.caption", 0, 1024)
        if "filename" in media:
            _str(media["filename"], f"{kind}.filename", 1, 240)

    def _check_location(self, location: dict[str, Any]) -> None:
        _keys(location, "location", {"latitude", "longitude"}, {"name", "address"})
        _number(location["latitude"], "location.latitude", 90)
        _number(location["longitude"], "location.longitude", 180)
        for key in ("name", "address"):
            if key in location:
                _str(location[key], f"location.{key}", 0, 1000)

    def _check_contacts(self, contacts: Any) -> None:
        names = {"formatted_name", "first_name", "last_name", "middle_name", "suffix", "prefix"}
        optional = {"phones", "emails", "addresses", "org", "urls", "birthday"}
        for i, contact in enumerate(_list(contacts, "contacts", 1, 257)):
            where = f"contacts[{i}]"
            _keys(_obj(contact, where), where, {"name"}, optional)
            name = _obj(contact["name"], f"{where}.name")
            _keys(name, f"{where}.name", {"formatted_name"}, names - {"formatted_name"})
            for key, value in name.items():
                _str(value, f"{where}.name.{key}", 1 if key == "formatted_name" else 0, 512)
            if len(name) < 2:
                raise Refused(f"{where}.name needs a first/last/middle name, suffix or prefix")
            for j, phone in enumerate(_list(contact.get("phones", []), f"{where}.phones", 0, 20)):
                here = f"{where}.phones[{j}]"
                _keys(_obj(phone, here), here, set(), {"phone", "type", "wa_id"})
                for key, value in phone.items():
                    _str(value, f"{here}.{key}", 1, 64)

    def _check_reaction(self, reaction: dict[str, Any]) -> None:
        _keys(reaction, "reaction", {"message_id", "emoji"}, set())
        _wamid(reaction["message_id"], "reaction.message_id")
        _str(reaction["emoji"], "reaction.emoji", 0, 16)

    def _check_interactive(self, box: dict[str, Any]) -> None:
        kind = box.get("type")
        if kind not in ("button", "list"):
            raise Refused(f"interactive.type must be button or list, got {kind!r}")
        _keys(box, "interactive", {"type", "body", "action"}, {"header", "footer"})
        body = _obj(box["body"], "interactive.body")
        _keys(body, "interactive.body", {"text"}, set())
        _str(body["text"], "interactive.body.text", 1, 1024 if kind == "button" else 4096)
        if "footer" in box:
            footer = _obj(box["footer"], "interactive.footer")
            _keys(footer, "interactive.footer", {"text"}, set())
            _str(footer["text"], "interactive.footer.text", 1, 60)
        if "header" in box:
            header = _obj(box["header"], "interactive.header")
            allowed = {"text"} | ({"image", "video", "document"} if kind == "button" else set())
            htype = header.get("type")
            if htype not in allowed:
                raise Refused(f"interactive.header.type {htype!r} not allowed for {kind}")
            _keys(header, "interactive.header", {"type", htype}, set())
            if htype == "text":
                _str(header["text"], "interactive.header.text", 1, 60)
            else:
                self._check_media(_obj(header[htype], f"header.{htype}"), htype)
        action = _obj(box["action"], "interactive.action")
        if kind == "button":
            self._check_buttons(action)
        else:
            self._check_list(action)

    def _check_buttons(self, action: dict[str, Any]) -> None:
        _keys(action, "interactive.action", {"buttons"}, set())
        ids: set[str] = set()
        titles: set[str] = set()
        for i, button in enumerate(_list(action["buttons"], "action.buttons", 1, 3)):
            where = f"action.buttons[{i}]"
            _keys(_obj(button, where), where, {"type", "reply"}, set())
            if button["type"] != "reply":
                raise Refused(f"{where}.type must be 'reply'")
            reply = _obj(button["reply"], f"{where}.reply")
            _keys(reply, f"{where}.reply", {"id", "title"}, set())
            ids.add(_str(reply["id"], f"{where}.reply.id", 1, 256))
            titles.add(_str(reply["title"], f"{where}.reply.title", 1, 20))
        if len(ids) != len(action["buttons"]) or len(titles) != len(action["buttons"]):
            raise Refused("button ids and titles must be unique")

    def _check_list(self, action: dict[str, Any]) -> None:
        _keys(action, "interactive.action", {"button", "sections"}, set())
        _str(action["button"], "action.button", 1, 20)
        sections = _list(action["sections"], "action.sections", 1, 10)
        ids: list[str] = []
        for i, section in enumerate(sections):
            where = f"action.sections[{i}]"
            _keys(_obj(section, where), where, {"rows"}, {"title"})
            if len(sections) > 1 and "title" not in section:
                raise Refused(f"{where}.title is required when there are several sections")
            if "title" in section:
                _str(section.get("title"), f"{where}.title", 1, 24)
            for j, row in enumerate(_list(section["rows"], f"{where}.rows", 1, 10)):
                here = f"{where}.rows[{j}]"
                _keys(_obj(row, here), here, {"id", "title"}, {"description"})
                ids.append(_str(row["id"], f"{here}.id", 1, 200))
                _str(row["title"], f"{here}.title", 1, 24)
                if "description" in row:
                    _str(row["description"], f"{here}.description", 0, 72)
        if not 1 <= len(ids) <= 10:
            raise Refused(f"a list must have 1..10 rows in all, has {len(ids)}")
        if len(set(ids)) != len(ids):
            raise Refused("row ids must be unique")

    def _check_template(self, template: dict[str, Any]) -> None:
        _keys(template, "template", {"name", "language"}, {"components"})
        if not isinstance(template["name"], str) or not TEMPLATE_NAME.fullmatch(template["name"]):
            raise Refused("template.name must be lowercase letters, digits and underscores")
        language = _obj(template["language"], "template.language")
        _keys(language, "template.language", {"code"}, {"policy"})
        if not isinstance(language["code"], str) or not LANGUAGE.fullmatch(language["code"]):
            raise Refused(f"template.language.code {language['code']!r} is no language code")
        if language.get("policy", "deterministic") != "deterministic":
            raise Refused("template.language.policy must be 'deterministic'")
        for i, component in enumerate(_list(template.get("components", []), "components", 0, 20)):
            where = f"template.components[{i}]"
            ctype = _obj(component, where).get("type")
            if ctype not in ("header", "body", "button", "footer"):
                raise Refused(f"{where}.type must be header/body/button/footer, got {ctype!r}")
            if ctype == "button":
                _keys(component, where, {"type", "sub_type", "index"}, {"parameters"})
                if component["sub_type"] not in BUTTON_SUB_TYPES:
                    raise Refused(f"{where}.sub_type {component['sub_type']!r} is unknown")
                index = component["index"]
                if isinstance(index, bool) or not re.fullmatch(r"\d", str(index)):
                    raise Refused(f"{where}.index must be 0..9")
            else:
                _keys(component, where, {"type"}, {"parameters"})
            for j, param in enumerate(_list(component.get("parameters", []), where, 0, 100)):
                self._check_parameter(_obj(param, f"{where}.parameters[{j}]"), f"{where}[{j}]")

    def _check_parameter(self, param: dict[str, Any], where: str) -> None:
        ptype = param.get("type")
        if ptype not in PARAMETER_TYPES:
            raise Refused(f"{where}.type must be one of {sorted(PARAMETER_TYPES)}, got {ptype!r}")
        _keys(param, where, {"type", ptype}, {"parameter_name"})
        if ptype in ("text", "payload"):
            _str(param[ptype], f"{where}.{ptype}", 1, 32768)
        elif ptype in ("image", "document", "video"):
            self._check_media(_obj(param[ptype], f"{where}.{ptype}"), ptype)
        elif ptype == "currency":
            _keys(
                _obj(param[ptype], where), where, {"fallback_value", "code", "amount_1000"}, set()
            )
        else:
            _keys(_obj(param[ptype], where), where, {"fallback_value"}, set())

    def _check_template_known(self, template: dict[str, Any]) -> None:
        """Unknown template or wrong body parameter count: Meta's legit errors 132001/132000."""
        name, code = template["name"], template["language"]["code"]
        if name not in self.templates:
            raise GraphFailure(
                graph_error(
                    404,
                    132001,
                    f"(#132001) {TITLES[132001]}",
                    f"template name ({name}) does not exist in {code}",
                )
            )
        given = sum(
            len(component.get("parameters", []))
            for component in template.get("components", [])
            if component["type"] == "body"
        )
        if given != self.templates[name]:
            raise GraphFailure(
                graph_error(
                    400,
                    132000,
                    f"(#132000) {TITLES[132000]}",
                    f"body: number of localizable_params ({given}) does not match the expected "
                    f"number of params ({self.templates[name]})",
                )
            )


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[FakeGraph]:
    """A started fake, stopped on the way out."""
    fake = FakeGraph(**options)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
