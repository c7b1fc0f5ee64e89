"""The Chatwoot Application API calls the mirror makes: contacts, conversations, messages.

Over the webhooks' HTTP/1.1 client, so every call passes the SSRF guard (``base_url`` is the
tenant's) on kept-alive connections; the ``api_access_token`` header (a user's token: an agent
bot's may not search or create contacts), JSON bodies, JSON answers; a message with a file goes
as ``multipart/form-data`` with one ``attachments[]`` part. Paths take a conversation's
``display_id`` (what the API answers as its ``id``). Failures raise :class:`ChatwootError`,
with the token scrubbed from whatever they quote.

Chatwoot does not deduplicate messages by ``source_id``: a create that timed out may have
happened, and trying it again may post it twice.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from zapgate.phone import normalize_number
from zapgate.webhooks import http11, ssrf

ANSWER_MAX = 256 * 1024
"""Bytes of an answer read at most (a contact with its inboxes, a message)."""
SEARCH_PAGES = 4
"""Pages of a contact search read at most (15 contacts each)."""
PAGE_SIZE = 15
SHOWN = "********"
MESSAGE_TYPES = frozenset({"incoming", "outgoing"})
STATUSES = frozenset({"sent", "delivered", "read", "failed"})

Attachment = tuple[str, str, bytes]
"""A file sent with a message: its name, its content type and its bytes."""


class ChatwootError(Exception):
    """What Chatwoot answered instead of a result; ``status`` 0: no answer came."""

    def __init__(self, public_reason: str, status: int, retryable: bool) -> None:
        super().__init__(public_reason)
        self.public_reason = public_reason
        self.status = status
        self.retryable = retryable

    @property
    def refused(self) -> bool:
        """Whether the token (or its user's access to the account) was refused."""
        return self.status in (401, 403)

    @property
    def not_found(self) -> bool:
        """Whether what the call named is gone (a deleted conversation, contact or inbox)."""
        return self.status == 404


@dataclass(frozen=True, slots=True)
class Contact:
    """A Chatwoot contact and its ``source_id`` in the mirror's inbox (None: not in it yet;
    creating a conversation with a new source id puts it there)."""

    id: int
    source_id: str | None


class ChatwootClient:
    """One Chatwoot account, reached with one user's token."""

    def __init__(
        self,
        base_url: str,
        account_id: int,
        api_token: str,
        allowlist: ssrf.Allowlist,
        timeout_seconds: float = 10.0,
        *,
        http: http11.Http11Client | None = None,
    ) -> None:
        self._root = f"{base_url.rstrip('/')}/api/v1/accounts/{account_id}"
        self._token = api_token
        self._timeout = timeout_seconds
        self._owned = http is None
        self._http = http or http11.Http11Client(allowlist)

    async def close(self) -> None:
        """Close the connections (only those of a client this one made)."""
        if self._owned:
            await self._http.close()

    async def find_contact(self, phone: str, inbox_id: int) -> Contact | None:
        """The contact whose phone number is exactly ``phone``, or None."""
        number = e164(phone)
        for page in range(1, SEARCH_PAGES + 1):
            found = await self._search(number, page)
            for contact in found:
                if isinstance(contact, dict) and contact.get("phone_number") == number:
                    return _contact(contact, _source_in(contact, inbox_id))
            if len(found) < PAGE_SIZE:
                return None
        return None

    async def create_contact(
        self,
        inbox_id: int,
        name: str,
        phone: str,
        identifier: str | None = None,
        *,
        source_id: str | None = None,
    ) -> Contact:
        """A new contact in the inbox (Chatwoot makes up the source id unless given)."""
        body: dict[str, Any] = {"inbox_id": inbox_id, "name": name, "phone_number": e164(phone)}
        if identifier is not None:
            body["identifier"] = identifier
        if source_id is not None:
            body["source_id"] = source_id
        answer = await self._json("POST", "/contacts", body)
        payload = answer.get("payload")
        contact = payload.get("contact") if isinstance(payload, dict) else None
        if not isinstance(contact, dict):
            raise _malformed("contact create", "payload.contact")
        contact_inbox = payload.get("contact_inbox") if isinstance(payload, dict) else None
        source = contact_inbox.get("source_id") if isinstance(contact_inbox, dict) else None
        return _contact(contact, source if isinstance(source, str) else None)

    async def create_conversation(self, inbox_id: int, contact_id: int, source_id: str) -> int:
        """A new conversation of the contact in the inbox; its display id."""
        body = {"inbox_id": inbox_id, "contact_id": contact_id, "source_id": source_id}
        return _id(await self._json("POST", "/conversations", body), "conversation create")

    async def post_message(
        self,
        conversation_id: int,
        content: str | None,
        message_type: str,
        source_id: str | None,
        attachment: Attachment | None = None,
        *,
        private: bool = False,
    ) -> int:
        """A message in the conversation (``incoming``: from the contact, ``outgoing``: from
        the account's side); Chatwoot's id for it."""
        if message_type not in MESSAGE_TYPES:
            raise ValueError(f"message_type must be one of {sorted(MESSAGE_TYPES)}")
        fields: dict[str, Any] = {"message_type": message_type}
        if content is not None:
            fields["content"] = content
        if source_id is not None:
            fields["source_id"] = source_id
        if private:
            fields["private"] = True
        path = f"/conversations/{conversation_id}/messages"
        if attachment is None:
            return _id(await self._json("POST", path, fields), "message create")
        body, content_type = _multipart(fields, attachment)
        return _id(await self._call("POST", path, body, content_type), "message create")

    async def update_status(
        self, conversation_id: int, message_id: int, status: str, external_error: str | None = None
    ) -> None:
        """Set a message's delivery status (API inboxes only; Chatwoot 4.2 and later: older
        ones answer 404). Chatwoot ignores a ``read`` message going back to ``delivered``."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}")
        body = {"status": status}
        if external_error is not None and status == "failed":
            body["external_error"] = external_error
        path = f"/conversations/{conversation_id}/messages/{message_id}"
        await self._json("PATCH", path, body)

    async def _search(self, number: str, page: int) -> list[Any]:
        path = f"/contacts/search?q={quote(number, safe='')}&page={page}"
        found = (await self._call("GET", path, None, None)).get("payload")
        if not isinstance(found, list):
            raise _malformed("contact search", "payload")
        return found

    async def _json(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return await self._call(method, path, data, "application/json")

    async def _call(
        self, method: str, path: str, body: bytes | None, content_type: str | None
    ) -> dict[str, Any]:
        """The JSON object of a 2xx answer; ChatwootError for anything else."""
        headers = {"api_access_token": self._token, "accept": "application/json"}
        if content_type is not None:
            headers["content-type"] = content_type
        answer = await self._answer(self._send(method, self._root + path, body, headers))
        document = http11.json_or_none(answer.excerpt) if answer.whole else None
        if not 200 <= answer.status < 300:
            raise self._scrubbed(_refusal(answer.status, document))
        if not isinstance(document, dict):
            raise ChatwootError(
                f"Chatwoot answered HTTP {answer.status} without a JSON object",
                answer.status,
                False,
            )
        return document

    def _send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> Awaitable[http11.Answer]:
        if method == "GET":
            return self._http.get(url, headers, ANSWER_MAX)
        assert body is not None
        if method == "PATCH":
            return self._http.patch(url, body, headers, keep=ANSWER_MAX)
        return self._http.post(url, body, headers, keep=ANSWER_MAX)

    async def _answer(self, request: Awaitable[http11.Answer]) -> http11.Answer:
        try:
            async with asyncio.timeout(self._timeout):
                return await request
        except http11.TooLarge:
            raise ChatwootError(
                f"Chatwoot answered more than {ANSWER_MAX} bytes", 0, False
            ) from None
        except http11.UNREACHABLE as error:
            raise _unreachable(error) from None

    def _scrubbed(self, error: ChatwootError) -> ChatwootError:
        """``error`` without the token (a server may quote a header back)."""
        error.public_reason = error.public_reason.replace(self._token, SHOWN)
        error.args = (error.public_reason,)
        return error


def e164(phone: str) -> str:
    """``phone`` as Chatwoot stores it: ``+`` and digits with country code."""
    return "+" + normalize_number(phone)


def _contact(contact: dict[str, Any], source_id: str | None) -> Contact:
    return Contact(_id(contact, "contact"), source_id)


def _source_in(contact: dict[str, Any], inbox_id: int) -> str | None:
    """The contact's source id in the inbox, from its ``contact_inboxes``."""
    for contact_inbox in contact.get("contact_inboxes") or []:
        inbox = contact_inbox.get("inbox") if isinstance(contact_inbox, dict) else None
        if isinstance(inbox, dict) and inbox.get("id") == inbox_id:
            source = contact_inbox.get("source_id")
            return source if isinstance(source, str) and source else None
    return None


def _id(document: dict[str, Any], what: str) -> int:
    found = document.get("id")
    if not isinstance(found, int) or isinstance(found, bool):
        raise _malformed(what, "id")
    return found


def _malformed(what: str, field: str) -> ChatwootError:
    return ChatwootError(f"Chatwoot's answer to the {what} has no {field}", 200, False)


def _refusal(status: int, document: Any) -> ChatwootError:
    """The error of a non-2xx answer: Chatwoot's words (``error``, ``message`` or
    ``errors``) when it gave some; retryable when a later try may work (5xx, 429)."""
    said = _words(document)
    reason = f"Chatwoot answered HTTP {status}" + (f": {said}" if said else "")
    return ChatwootError(reason, status, status >= 500 or status == 429)


def _words(document: Any) -> str:
    if not isinstance(document, dict):
        return ""
    said = document.get("error") or document.get("message") or document.get("errors")
    if isinstance(said, list):
        said = "; ".join(str(item) for item in said)
    return str(said)[:300] if said else ""


def _unreachable(error: BaseException) -> ChatwootError:
    if isinstance(error, ssrf.UnsafeUrl):
        return ChatwootError(f"Chatwoot's address is refused: {str(error).split(':')[0]}", 0, False)
    if isinstance(error, TimeoutError):
        return ChatwootError("Chatwoot did not answer in time", 0, True)
    return ChatwootError(f"cannot reach Chatwoot: {type(error).__name__}", 0, True)


_UNQUOTED = {34: "_", 13: "_", 10: "_", 92: "_"}


def _multipart(fields: dict[str, Any], attachment: Attachment) -> tuple[bytes, str]:
    """A form of ``fields`` and the file as ``attachments[]``; the body and its content type."""
    boundary = secrets.token_hex(16)
    parts = [_part(boundary, f'name="{name}"', _form(value)) for name, value in fields.items()]
    filename, content_type, data = attachment
    disposition = f'name="attachments[]"; filename="{filename.translate(_UNQUOTED)}"'
    parts.append(_part(boundary, disposition, data, content_type))
    body = b"".join([*parts, f"--{boundary}--\r\n".encode()])
    return body, f"multipart/form-data; boundary={boundary}"


def _form(value: Any) -> bytes:
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return str(value).encode()


def _part(boundary: str, disposition: str, data: bytes, content_type: str | None = None) -> bytes:
    head = f"--{boundary}\r\ncontent-disposition: form-data; {disposition}\r\n"
    if content_type:
        head += f"content-type: {content_type}\r\n"
    return head.encode() + b"\r\n" + data + b"\r\n"
