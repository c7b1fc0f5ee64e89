"""A strict local fake of Chatwoot's Application API (one account, one API-channel inbox) on
127.0.0.1.

It answers the routes the Chatwoot mirror uses, shaped as Chatwoot's controllers and views answer
them: contact search and create, conversation create, message create (JSON, or multipart with
``attachments[]``) and the API-inbox message status update (``PATCH``, Chatwoot 4.2 and later).
Every call needs the ``api_access_token`` header (401 otherwise, in Chatwoot's words). Paths take
a conversation's display id. Where Chatwoot would silently drop an unknown field or coerce a wrong
type, the fake refuses it (422, ``{"error": ...}``) and records it in :attr:`FakeChatwoot.problems`,
so a test can assert the mirror sent nothing Chatwoot would misread. Legitimate errors (a bad token,
an unknown conversation, a phone number already taken, injected failures, an outage) are not
problems.

Like Chatwoot, every message created (through the API or by :meth:`FakeChatwoot.agent_reply`) is
POSTed as a ``message_created`` event to the inbox's :attr:`~FakeChatwoot.webhook_url` — that is
how a mirror hears its own messages back — and a status update as ``message_updated``. Events are
serialised as Rails does (compact UTF-8, ``<``, ``>`` and ``&`` escaped as ``\\u003c``...) and,
when :attr:`~FakeChatwoot.webhook_secret` is set, signed as Chatwoot 4.13+ signs API-inbox
webhooks: ``X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`` with
``X-Chatwoot-Timestamp`` and ``X-Chatwoot-Delivery`` (computed here on its own, not with zapgate's
code). A delivery answered with an error marks its message ``failed``, as Chatwoot does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

E164 = re.compile(r"\+[1-9]\d{1,14}")
CONTENT_MAX = 150_000
MESSAGE_TYPES = {"incoming": 0, "outgoing": 1, "activity": 2, "template": 3}
STATUSES = ("sent", "delivered", "read", "failed")
CONTACT_FIELDS = frozenset(
    {"inbox_id", "name", "email", "phone_number", "identifier", "source_id", "avatar_url"}
    | {"blocked", "additional_attributes", "custom_attributes"}
)
CONVERSATION_FIELDS = frozenset(
    {"source_id", "inbox_id", "contact_id", "status", "assignee_id", "team_id"}
    | {"additional_attributes", "custom_attributes", "snoozed_until", "message"}
)
MESSAGE_FIELDS = frozenset(
    {"content", "message_type", "private", "content_type", "content_attributes", "source_id"}
    | {"echo_id", "campaign_id", "template_params", "attachment_ids"}
)
STATUS_FIELDS = frozenset({"status", "external_error"})
NO_SESSION = {"errors": ["You need to sign in or sign up before continuing."]}
NOT_FOUND = {"error": "Resource could not be found"}


def rails_json(document: Any) -> bytes:
    """``document`` as Rails' ``to_json`` writes it: compact, UTF-8, HTML characters escaped."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Chatwoot's ``X-Chatwoot-Signature`` of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def invalid(message: str, attribute: str) -> web.Response:
    """A RecordInvalid answer: ``{message, attributes}``."""
    return web.json_response({"message": message, "attributes": [attribute]}, status=422)


class Refused(Exception):
    """A request Chatwoot would misread or refuse as malformed: a problem, answered 422."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.response = error(422, problem)


class Failure(Exception):
    """A legitimate error answer (not a problem)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass
class Contact:
    id: int
    name: str
    phone_number: str | None
    identifier: str | None
    email: str | None = None
    inboxes: list[tuple[int, str]] = field(default_factory=list)
    """Its contact inboxes: (inbox id, source id)."""

    def source_in(self, inbox_id: int) -> str | None:
        return next((source for inbox, source in self.inboxes if inbox == inbox_id), None)


@dataclass
class Conversation:
    id: int
    """The display id (what the API calls ``id``)."""
    contact_id: int
    inbox_id: int
    source_id: str
    status: str = "open"


@dataclass
class Attachment:
    id: int
    filename: str
    content_type: str
    data: bytes

    @property
    def file_type(self) -> str:
        kind = self.content_type.split("/")[0]
        return kind if kind in ("image", "audio", "video") else "file"


@dataclass
class Message:
    id: int
    conversation_id: int
    content: str | None
    message_type: str
    private: bool
    source_id: str | None
    content_attributes: dict[str, Any]
    attachments: list[Attachment]
    via_api: bool
    """Created through the API (by the mirror), not by an agent in the dashboard."""
    status: str = "sent"
    external_error: str | None = None
    created_at: float = field(default_factory=time.time)


@dataclass
class Delivery:
    """One webhook POST to the inbox's webhook URL."""

    event: str
    body: bytes
    headers: dict[str, str]
    status: int | None
    error: str | None = None

    @property
    def payload(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found


WebhookPost = Callable[[str, bytes, dict[str, str]], Awaitable[int]]
"""Posts a webhook (URL, body, headers); the answer's status."""


class FakeChatwoot:
    """One Chatwoot account with one API-channel inbox, on ``127.0.0.1:<port>``; ``url`` is the
    Chatwoot base URL."""

    def __init__(
        self,
        *,
        token: str = "fake-chatwoot-user-token-0123456789",
        account_id: int = 3,
        inbox_id: int = 7,
        agent_name: str = "Agent Smith",
        lock_to_single_conversation: bool = False,
    ) -> None:
        self.token = token
        self.account_id = account_id
        self.account_name = "Zapgate Test"
        self.inbox_id = inbox_id
        self.inbox_name = "WhatsApp"
        self.agent = {"id": 11, "name": agent_name, "email": "agent@example.com"}
        self.lock_to_single_conversation = lock_to_single_conversation
        self.url = ""
        self.webhook_url: str | None = None
        """The API inbox's webhook URL (its "callback URL")."""
        self.webhook_secret: str | None = None
        self.lost_files: set[str] = set()
        """File names whose download answers 404 (a file gone from Chatwoot's storage)."""
        """The inbox's signing secret; None: unsigned, as before Chatwoot 4.13."""
        self.webhook_post: WebhookPost = self._post
        self.contacts: list[Contact] = []
        self.conversations: list[Conversation] = []
        self.messages: list[Message] = []
        self.deliveries: list[Delivery] = []
        self.problems: list[str] = []
        self.requests: list[str] = []
        """``METHOD path`` of every request, in order."""
        self.outage = False
        self._failures: list[web.Response] = []
        self._next_id = {"contact": 100, "conversation": 0, "message": 1000, "attachment": 50}
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 at a free port."""
        app = web.Application(middlewares=[self._gate], client_max_size=64 * 1024 * 1024)
        root = "/api/v1/accounts/{account}"
        app.router.add_get(f"{root}/contacts/search", self._search)
        app.router.add_post(f"{root}/contacts", self._create_contact)
        app.router.add_post(f"{root}/conversations", self._create_conversation)
        app.router.add_post(f"{root}/conversations/{{conversation}}/messages", self._create_message)
        app.router.add_patch(
            f"{root}/conversations/{{conversation}}/messages/{{message}}", self._update_message
        )
        app.router.add_get("/rails/active_storage/blobs/{attachment}/{name}", self._blob)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        """Cancel pending webhooks, close their session, stop listening."""
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
        """Wait until every pending webhook went out."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- test controls -----------------------------------------------------------------------

    def fail_next(self, status: int, *, count: int = 1, message: str = "injected") -> None:
        """Answer the next ``count`` API calls with ``status`` and ``{"error": message}``."""
        self._failures += [error(status, message) for _ in range(count)]

    def add_contact(
        self, name: str, phone_number: str | None, identifier: str | None = None
    ) -> Contact:
        """A contact created in the dashboard (in no inbox)."""
        contact = Contact(self._new("contact"), name, phone_number, identifier)
        self.contacts.append(contact)
        return contact

    def delete_conversation(self, conversation_id: int) -> None:
        """An agent deleted the conversation (its messages go with it)."""
        self.conversations = [c for c in self.conversations if c.id != conversation_id]
        self.messages = [m for m in self.messages if m.conversation_id != conversation_id]

    async def wait_messages(self, count: int, timeout: float = 5.0) -> list[Message]:
        """The messages once at least ``count`` are stored."""
        await self._wait(lambda: len(self.messages) >= count, timeout)
        return list(self.messages)

    async def wait_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """The webhook deliveries once at least ``count`` were made."""
        await self._wait(lambda: len(self.deliveries) >= count, timeout)
        return list(self.deliveries)

    async def agent_reply(
        self,
        conversation_id: int,
        content: str | None,
        *,
        private: bool = False,
        attachment: tuple[str, str, bytes] | None = None,
        files: list[tuple[str, str, bytes]] | None = None,
    ) -> Message:
        """An agent's message (or private note) from the dashboard, with an ``attachment`` or
        several ``files`` (name, type, bytes): stored, then its ``message_created`` event posted
        to the webhook URL (awaited)."""
        given = (files or []) + ([] if attachment is None else [attachment])
        attachments = [self._attachment(*file) for file in given]
        conversation = self.conversation(conversation_id)
        message = self._store(conversation, content, "outgoing", private, None, {}, attachments)
        message.via_api = False
        await self._notify()
        await self._deliver("message_created", message)
        return message

    async def set_status(self, conversation_id: int, status: str) -> Delivery | None:
        """An agent resolved (or reopened, ...) the conversation: its
        ``conversation_status_changed`` event (None without a webhook URL)."""
        conversation = self.conversation(conversation_id)
        previous, conversation.status = conversation.status, status
        payload = {
            **self.conversation_data(conversation),
            "event": "conversation_status_changed",
            "changed_attributes": [
                {"status": {"previous_value": previous, "current_value": status}}
            ],
        }
        return await self._send_event("conversation_status_changed", payload)

    def conversation(self, conversation_id: int) -> Conversation:
        return next(c for c in self.conversations if c.id == conversation_id)

    def contact(self, contact_id: int) -> Contact:
        return next(c for c in self.contacts if c.id == contact_id)

    def message(self, message_id: int) -> Message:
        return next(m for m in self.messages if m.id == message_id)

    # --- event shapes ------------------------------------------------------------------------

    def message_event(self, message: Message, event: str) -> dict[str, Any]:
        """``Message#webhook_data`` merged with ``event`` (``message_type`` as a string)."""
        payload: dict[str, Any] = {
            "account": {"id": self.account_id, "name": self.account_name},
            "additional_attributes": {},
            "content_attributes": message.content_attributes,
            "content_type": "text",
            "content": message.content,
            "conversation": self.conversation_data(self.conversation(message.conversation_id)),
            "created_at": _iso(message.created_at),
            "id": message.id,
            "inbox": {"id": self.inbox_id, "name": self.inbox_name},
            "message_type": message.message_type,
            "private": message.private,
            "sender": self._sender(message),
            "source_id": message.source_id,
            "event": event,
        }
        if message.attachments:
            payload["attachments"] = [
                self._attachment_data(message, a) for a in message.attachments
            ]
        return payload

    def conversation_data(self, conversation: Conversation) -> dict[str, Any]:
        """``Conversation#webhook_data``: the conversation, its contact inbox, its contact
        (``meta.sender``) and its last message."""
        messages = [m for m in self.messages if m.conversation_id == conversation.id]
        contact = self.contact(conversation.contact_id)
        return {
            "additional_attributes": {},
            "can_reply": True,
            "channel": "Channel::Api",
            "contact_inbox": {
                "id": conversation.id + 500,
                "contact_id": contact.id,
                "inbox_id": conversation.inbox_id,
                "source_id": conversation.source_id,
                "hmac_verified": False,
                "pubsub_token": "pubsub-" + conversation.source_id,
            },
            "id": conversation.id,
            "inbox_id": conversation.inbox_id,
            "messages": [self.message_data(m) for m in messages[-1:]],
            "labels": [],
            "meta": {
                "sender": self._contact_data(contact),
                "assignee": None,
                "team": None,
                "hmac_verified": False,
            },
            "status": conversation.status,
            "custom_attributes": {},
            "snoozed_until": None,
            "unread_count": sum(m.message_type == "incoming" for m in messages),
            "agent_last_seen_at": 0,
            "contact_last_seen_at": 0,
            "timestamp": int(messages[-1].created_at) if messages else 0,
        }

    def message_data(self, message: Message) -> dict[str, Any]:
        """A message as the API answers it (``message_type`` as an integer)."""
        data: dict[str, Any] = {
            "id": message.id,
            "content": message.content,
            "account_id": self.account_id,
            "inbox_id": self.inbox_id,
            "conversation_id": message.conversation_id,
            "message_type": MESSAGE_TYPES[message.message_type],
            "content_type": "text",
            "content_attributes": message.content_attributes,
            "created_at": int(message.created_at),
            "private": message.private,
            "status": message.status,
            "source_id": message.source_id,
            "sender": self._sender(message),
        }
        if message.attachments:
            data["attachments"] = [self._attachment_data(message, a) for a in message.attachments]
        return data

    def _sender(self, message: Message) -> dict[str, Any]:
        if message.message_type == "incoming":
            contact = self.contact(self.conversation(message.conversation_id).contact_id)
            return self._contact_data(contact)
        return {**self.agent, "available_name": self.agent["name"], "type": "user"}

    def _contact_data(self, contact: Contact) -> dict[str, Any]:
        return {
            "additional_attributes": {},
            "custom_attributes": {},
            "email": contact.email,
            "id": contact.id,
            "identifier": contact.identifier,
            "name": contact.name,
            "phone_number": contact.phone_number,
            "thumbnail": "",
            "blocked": False,
            "type": "contact",
        }

    def _attachment_data(self, message: Message, attachment: Attachment) -> dict[str, Any]:
        name = quote(attachment.filename)
        return {
            "id": attachment.id,
            "message_id": message.id,
            "file_type": attachment.file_type,
            "account_id": self.account_id,
            "extension": None,
            "data_url": f"{self.url}/rails/active_storage/blobs/{attachment.id}/{name}",
            "thumb_url": "",
            "file_size": len(attachment.data),
        }

    def _contact_resource(self, contact: Contact) -> dict[str, Any]:
        """A contact as the /contacts endpoints answer it, with its contact inboxes."""
        inbox = {"id": self.inbox_id, "name": self.inbox_name, "channel_type": "Channel::Api"}
        return {
            **self._contact_data(contact),
            "availability_status": "offline",
            "last_activity_at": None,
            "created_at": 1_700_000_000,
            "contact_inboxes": [
                {"source_id": source, "inbox": {**inbox, "id": inbox_id}}
                for inbox_id, source in contact.inboxes
            ],
        }

    def _conversation_resource(self, conversation: Conversation) -> dict[str, Any]:
        data = self.conversation_data(conversation)
        return {
            "meta": {**data["meta"], "channel": "Channel::Api"},
            "id": conversation.id,
            "messages": [],
            "account_id": self.account_id,
            "uuid": str(uuid.uuid4()),
            "inbox_id": conversation.inbox_id,
            "status": conversation.status,
            "contact_inbox": data["contact_inbox"],
            "unread_count": 0,
            "timestamp": int(time.time()),
        }

    # --- plumbing ----------------------------------------------------------------------------

    @web.middleware
    async def _gate(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Records, simulates an outage and failures, checks the token and the account, turns
        refusals into answers."""
        self.requests.append(f"{request.method} {request.path_qs}")
        if request.path.startswith("/rails/"):
            return await handler(request)
        if self.outage:
            return error(503, "Service Unavailable")
        if "api_access_token" not in request.headers:
            return web.json_response(NO_SESSION, status=401)
        if request.headers["api_access_token"] != self.token:
            return error(401, "Invalid Access Token")
        if self._failures:
            return self._failures.pop(0)
        try:
            if request.match_info.get("account") != str(self.account_id):
                raise Failure(error(401, "You are not authorized to access this account"))
            return await handler(request)
        except Refused as refused:
            self.problems.append(f"{request.method} {request.path}: {refused}")
            return refused.response
        except Failure as failure:
            return failure.response
        except web.HTTPException as exc:
            if exc.status not in (404, 405):
                raise
            self.problems.append(f"{request.method} {request.path}: no such route")
            return web.json_response(NOT_FOUND, status=404)

    def _new(self, kind: str) -> int:
        self._next_id[kind] += 1
        return self._next_id[kind]

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wait(self, condition: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(condition)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=5)
        async with self._session.post(url, data=body, headers=headers, timeout=timeout) as answer:
            await answer.read()
            return answer.status

    async def _deliver(self, event: str, message: Message) -> None:
        """The message's event to the webhook URL; a failed delivery fails the message."""
        delivery = await self._send_event(event, self.message_event(message, event))
        if delivery is not None and delivery.error is not None:
            message.status, message.external_error = "failed", delivery.error

    async def _send_event(self, event: str, payload: dict[str, Any]) -> Delivery | None:
        if self.webhook_url is None:
            return None
        body = rails_json(payload)
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "rest-client/2.1.0 (linux x86_64) ruby/3.4.4p34",
        }
        if self.webhook_secret is not None:
            timestamp = str(int(time.time()))
            headers["X-Chatwoot-Signature"] = sign(self.webhook_secret, timestamp, body)
            headers["X-Chatwoot-Timestamp"] = timestamp
            headers["X-Chatwoot-Delivery"] = str(uuid.uuid4())
        delivery = Delivery(event, body, headers, None)
        try:
            delivery.status = await self.webhook_post(self.webhook_url, body, headers)
            if not 200 <= delivery.status < 300:
                delivery.error = f"{delivery.status} {_reason(delivery.status)}"
        except Exception as exc:  # a test's receiver may fail any way: keep it
            delivery.error = f"{type(exc).__name__}: {exc}"
        self.deliveries.append(delivery)
        await self._notify()
        return delivery

    def _store(
        self,
        conversation: Conversation,
        content: str | None,
        message_type: str,
        private: bool,
        source_id: str | None,
        content_attributes: dict[str, Any],
        attachments: list[Attachment],
    ) -> Message:
        message = Message(
            self._new("message"),
            conversation.id,
            content,
            message_type,
            private,
            source_id,
            content_attributes,
            attachments,
            via_api=True,
        )
        self.messages.append(message)
        return message

    def _attachment(self, filename: str, content_type: str, data: bytes) -> Attachment:
        return Attachment(self._new("attachment"), filename, content_type, data)

    def _conversation_of(self, request: web.Request) -> Conversation:
        try:
            display_id = int(request.match_info["conversation"])
        except ValueError:
            raise Failure(web.json_response(NOT_FOUND, status=404)) from None
        found = next((c for c in self.conversations if c.id == display_id), None)
        if found is None:
            raise Failure(web.json_response(NOT_FOUND, status=404))
        return found

    # --- routes ------------------------------------------------------------------------------

    async def _search(self, request: web.Request) -> web.Response:
        if unknown := sorted(set(request.query) - {"q", "page", "sort", "include_contact_inboxes"}):
            raise Refused(f"unknown query parameter(s) {unknown}")
        query = request.query.get("q", "").strip()
        if not query:
            raise Failure(error(422, "Specify search string with parameter q"))
        page = int(request.query.get("page", "1"))
        found = [c for c in self.contacts if _matches(c, query)]
        shown = found[(page - 1) * 15 : page * 15]
        return web.json_response(
            {
                "meta": {"count": len(shown), "current_page": page},
                "payload": [self._contact_resource(c) for c in shown],
            }
        )

    async def _create_contact(self, request: web.Request) -> web.Response:
        body = _fields(await _json(request), CONTACT_FIELDS)
        inbox_id = _typed(body, "inbox_id", int, required=True)
        if inbox_id != self.inbox_id:
            raise Failure(web.json_response(NOT_FOUND, status=404))
        phone = _typed(body, "phone_number", str)
        identifier = _typed(body, "identifier", str)
        name = _typed(body, "name", str)
        source_id = _typed(body, "source_id", str)
        self._check_contact(phone, identifier)
        contact = self.add_contact(name or "", phone, identifier)
        contact.email = _typed(body, "email", str)
        source = source_id or str(uuid.uuid4())
        contact.inboxes.append((inbox_id, source))
        inbox = {"id": inbox_id, "name": self.inbox_name, "channel_type": "Channel::Api"}
        return web.json_response(
            {
                "payload": {
                    "contact": self._contact_resource(contact),
                    "contact_inbox": {"inbox": inbox, "source_id": source},
                }
            }
        )

    def _check_contact(self, phone: str | None, identifier: str | None) -> None:
        if phone is not None and not E164.fullmatch(phone):
            self.problems.append(f"phone_number {phone!r} is not E.164 with '+'")
            raise Failure(invalid("Phone number should be in e164 format", "phone_number"))
        if phone is not None and any(c.phone_number == phone for c in self.contacts):
            raise Failure(invalid("Phone number has already been taken", "phone_number"))
        if identifier is not None and any(c.identifier == identifier for c in self.contacts):
            raise Failure(invalid("Identifier has already been taken", "identifier"))

    async def _create_conversation(self, request: web.Request) -> web.Response:
        body = _fields(await _json(request), CONVERSATION_FIELDS)
        source_id = _typed(body, "source_id", str, required=True)
        inbox_id = _typed(body, "inbox_id", int, required=True)
        contact_id = _typed(body, "contact_id", int, required=True)
        status = _typed(body, "status", str) or "open"
        if status not in ("open", "resolved", "pending"):
            raise Refused(f"status {status!r} is not open, resolved or pending")
        contact = next((c for c in self.contacts if c.id == contact_id), None)
        if inbox_id != self.inbox_id or contact is None:
            raise Failure(web.json_response(NOT_FOUND, status=404))
        if any(s == source_id and c is not contact for c in self.contacts for _, s in c.inboxes):
            raise Failure(error(422, "source_id should be unique"))
        if (inbox_id, source_id) not in contact.inboxes:
            contact.inboxes.append((inbox_id, source_id))
        conversation = self._open_conversation(contact, source_id, status)
        return web.json_response(self._conversation_resource(conversation))

    def _open_conversation(self, contact: Contact, source_id: str, status: str) -> Conversation:
        if self.lock_to_single_conversation:
            for found in self.conversations:
                if found.contact_id == contact.id and found.status != "resolved":
                    return found
        conversation = Conversation(self._new("conversation"), contact.id, self.inbox_id, source_id)
        conversation.status = status
        self.conversations.append(conversation)
        return conversation

    async def _create_message(self, request: web.Request) -> web.Response:
        conversation = self._conversation_of(request)
        if request.content_type == "multipart/form-data":
            fields, attachments = await self._form(request)
        else:
            fields, attachments = _fields(await _json(request), MESSAGE_FIELDS), []
        message_type = _typed(fields, "message_type", str) or "outgoing"
        if message_type not in ("incoming", "outgoing"):
            raise Refused(f"message_type {message_type!r} is not incoming or outgoing")
        content = _typed(fields, "content", str)
        if not content and not attachments:
            raise Refused("a message with neither content nor attachments")
        if content is not None and len(content) > CONTENT_MAX:
            raise Failure(
                invalid(f"Content is too long (maximum is {CONTENT_MAX} characters)", "content")
            )
        private = bool(_typed(fields, "private", bool))
        source_id = _typed(fields, "source_id", str)
        attributes = _typed(fields, "content_attributes", dict) or {}
        message = self._store(
            conversation, content, message_type, private, source_id, attributes, attachments
        )
        await self._notify()
        self._spawn(self._deliver("message_created", message))
        return web.json_response(self.message_data(message))

    async def _form(self, request: web.Request) -> tuple[dict[str, Any], list[Attachment]]:
        """A multipart message: its fields (typed as JSON would be) and its ``attachments[]``."""
        fields: dict[str, Any] = {}
        attachments: list[Attachment] = []
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                if name != "attachments[]":
                    raise Refused(f"a file in field {name!r}, not 'attachments[]'")
                attachments.append(
                    self._attachment(value.filename, value.content_type, value.file.read())
                )
            elif name in fields:
                raise Refused(f"field {name!r} repeated")
            else:
                fields[name] = value
        if "private" in fields:
            if fields["private"] not in ("true", "false"):
                raise Refused(f"private {fields['private']!r} is not true or false")
            fields["private"] = fields["private"] == "true"
        if "content_attributes" in fields:
            raise Refused("content_attributes in a form (Chatwoot reads it as a string)")
        return _fields(fields, MESSAGE_FIELDS), attachments

    async def _update_message(self, request: web.Request) -> web.Response:
        conversation = self._conversation_of(request)
        body = _fields(await _json(request), STATUS_FIELDS)
        status = _typed(body, "status", str, required=True)
        if status not in STATUSES:
            raise Refused(f"status {status!r} is not one of {STATUSES}")
        external_error = _typed(body, "external_error", str)
        message = next(
            (
                m
                for m in self.messages
                if m.conversation_id == conversation.id
                and str(m.id) == request.match_info["message"]
            ),
            None,
        )
        if message is None:
            raise Failure(web.json_response(NOT_FOUND, status=404))
        if not (message.status == "read" and status == "delivered"):
            message.status = status
            message.external_error = external_error if status == "failed" else None
            self._spawn(self._deliver("message_updated", message))
        return web.json_response(self.message_data(message))

    async def _blob(self, request: web.Request) -> web.Response:
        wanted = request.match_info["attachment"]
        for message in self.messages:
            for attachment in message.attachments:
                if str(attachment.id) == wanted and attachment.filename not in self.lost_files:
                    return web.Response(body=attachment.data, content_type=attachment.content_type)
        raise web.HTTPNotFound()


def _matches(contact: Contact, query: str) -> bool:
    """Chatwoot's contact search: a case-insensitive substring of the name, email, phone
    number or identifier, or the id."""
    lowered = query.lower()
    texts = (contact.name, contact.email, contact.phone_number, contact.identifier)
    return any(text and lowered in text.lower() for text in texts) or query == str(contact.id)


async def _json(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise Refused(f"content type {request.content_type!r}, not JSON")
    try:
        return json.loads(await request.read())
    except ValueError:
        raise Refused("the body is not JSON") from None


def _fields(body: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Refused("the body is not a JSON object")
    if unknown := sorted(set(body) - allowed):
        raise Refused(f"unknown field(s) {unknown} (Chatwoot would drop them)")
    return body


def _typed(body: dict[str, Any], name: str, kind: type, *, required: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise Refused(f"no {name}")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Refused(f"{name} is {type(value).__name__}, not {kind.__name__}")
    return value


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _reason(status: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(status).phrase
    return "Unknown"


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[FakeChatwoot]:
    """A started fake, stopped on the way out."""
    fake = FakeChatwoot(**options)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
