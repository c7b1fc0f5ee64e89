"""A strict local fake of Twilio's Messages REST API (2010-04-01) on 127.0.0.1.

It answers the two routes the ``sms`` engine uses, shaped as Twilio documents them: the Account
(``GET /2010-04-01/Accounts/{sid}.json``, the credentials check) and Messages (``POST
/2010-04-01/Accounts/{sid}/Messages.json``, form-encoded). Both need HTTP basic auth with the
account SID and auth token (else 401, error 20003). A request Twilio would refuse as malformed
(no ``To``, a ``To`` not in E.164, neither or both of ``From`` and ``MessagingServiceSid``, no
``Body``, a bad ``StatusCallback``, an unknown parameter) is answered with Twilio's error and
recorded in :attr:`FakeTwilio.problems`, so a test can assert the engine sent nothing wrong.
Legitimate errors (bad credentials, an unsubscribed recipient, injected failures) are not problems.

Callbacks are form POSTs signed as Twilio signs them (``X-Twilio-Signature``: base64 of the
HMAC-SHA1, keyed with the auth token, of the URL followed by the sorted parameters' names and
values; computed here on its own, not with zapgate's code): statuses of each accepted message to
its ``StatusCallback`` (queued, sent, then delivered or undelivered), and inbound SMS to
:attr:`FakeTwilio.inbound_url`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web

API_VERSION = "2010-04-01"
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
HOSTNAME = re.compile(r"[A-Za-z0-9.-]+")
MESSAGE_PARAMS = frozenset(
    {
        "To",
        "From",
        "MessagingServiceSid",
        "Body",
        "StatusCallback",
        "MediaUrl",
        "ApplicationSid",
        "MaxPrice",
        "ProvideFeedback",
        "Attempt",
        "ValidityPeriod",
        "ForceDelivery",
        "ContentRetention",
        "AddressRetention",
        "SmartEncoded",
        "PersistentAction",
        "ShortenUrls",
        "ScheduleType",
        "SendAt",
        "SendAsMms",
        "ContentSid",
        "ContentVariables",
        "RiskCheck",
    }
)
"""The parameters Twilio's Create a Message takes (anything else is a mistake of the caller)."""
MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number "
    "for this destination.",
    21609: "Invalid StatusCallback",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21701: "The Messaging Service Sid {service} is invalid.",
}


def sid(prefix: str) -> str:
    """A SID shaped like Twilio's: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def twilio_error(status: int, code: int, **values: str) -> web.Response:
    """Twilio's error answer: ``{code, message, more_info, status}``."""
    body = {
        "code": code,
        "message": MESSAGES[code].format(**values),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)


def sign(url: str, params: dict[str, str], auth_token: str) -> str:
    """Twilio's signature of a POST of ``params`` to ``url`` (one value per name)."""
    text = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class Refused(Exception):
    """A request Twilio would refuse as malformed: a problem, answered with Twilio's error."""

    def __init__(self, problem: str, response: web.Response) -> None:
        super().__init__(problem)
        self.response = response


class Failure(Exception):
    """A legitimate error answer (not a problem)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass
class Sent:
    """One accepted ``POST .../Messages.json``."""

    params: dict[str, str]
    sid: str
    at: float
    callbacks: list[str] = field(default_factory=list)
    """Statuses posted to its ``StatusCallback`` so far."""


Callback = Callable[[str, bytes, dict[str, str]], Awaitable[int]]
"""Posts a signed form (URL, body, headers); the answer's status."""


class FakeTwilio:
    """One Twilio account with a number and a messaging service, on ``127.0.0.1:<port>``.

    ``url`` is the engine's ``api_base``. Sends to a number in :attr:`unreachable` end
    ``undelivered`` with error 30003; :attr:`unsubscribed` and :attr:`landlines` are refused at
    once (21610, 21614).
    """

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str = "fake-twilio-auth-token-0123456789",
        number: str = "+15005550006",
        friendly_name: str = "Zapgate Test",
    ) -> None:
        self.account_sid = account_sid or sid("AC")
        self.auth_token = auth_token
        self.number = number
        self.service_sid = sid("MG")
        self.friendly_name = friendly_name
        self.url = ""
        self.sends: list[Sent] = []
        self.problems: list[str] = []
        self.requests = 0
        self.outage = False
        self.outage_left = 0
        """Requests still to answer with an outage's 500 (then it is over by itself)."""
        self.auto_status = True
        self.status_delay = 0.01
        """Seconds before the first status callback of a send (its answer goes out first)."""
        self.unreachable: set[str] = set()
        self.unsubscribed: set[str] = set()
        self.landlines: set[str] = set()
        self.inbound_url: str | None = None
        """The number's "a message comes in" webhook."""
        self.callback: Callback = self._post
        self.callback_answers: list[tuple[str, int]] = []
        """Each callback's URL and the status it got."""
        self.callback_errors: list[str] = []
        self._failures: list[web.Response] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 at a free port."""
        app = web.Application(middlewares=[self._gate])
        app.router.add_get(f"/{API_VERSION}/Accounts/{{account}}.json", self._account)
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        """Cancel pending callbacks, close the callback session, stop listening."""
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

    def fail_sends(self, code: int, *, count: int = 1, http_status: int = 400) -> None:
        """Answer the next ``count`` sends with this Twilio error (429 with 20429: throttled)."""
        for _ in range(count):
            self._failures.append(twilio_error(http_status, code, to="", service="", path=""))

    def signature(self, url: str, params: dict[str, str], auth_token: str | None = None) -> str:
        """The ``X-Twilio-Signature`` of ``params`` posted to ``url`` (with the account's
        token, or ``auth_token``)."""
        return sign(url, params, self.auth_token if auth_token is None else auth_token)

    def inbound_params(
        self, sender: str, body: str, *, to: str | None = None, message_sid: str | None = None
    ) -> dict[str, str]:
        """The parameters of an inbound SMS from ``sender`` to the account's number."""
        message_sid = message_sid or sid("SM")
        return {
            "ToCountry": "US",
            "ToState": "CA",
            "SmsMessageSid": message_sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": message_sid,
            "FromState": "SP",
            "SmsStatus": "received",
            "FromCity": "SAO PAULO",
            "Body": body,
            "FromCountry": "BR",
            "To": to or self.number,
            "ToZip": "",
            "NumSegments": "1",
            "MessageSid": message_sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": API_VERSION,
        }

    def status_params(
        self, sent: Sent, status: str, error_code: int | None = None
    ) -> dict[str, str]:
        """The parameters of a status callback of ``sent``."""
        params = {
            "SmsSid": sent.sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": sent.params["To"],
            "MessageSid": sent.sid,
            "AccountSid": self.account_sid,
            "From": sent.params.get("From", self.number),
            "ApiVersion": API_VERSION,
        }
        if "MessagingServiceSid" in sent.params:
            params["MessagingServiceSid"] = sent.params["MessagingServiceSid"]
        if status == "delivered":
            params["RawDlrDoneDate"] = time.strftime("%y%m%d%H%M", time.gmtime())
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    async def post(self, url: str, params: dict[str, str], *, signature: str | None = None) -> int:
        """POST ``params`` to ``url`` as Twilio does (signed unless ``signature``); the status."""
        body = urlencode(params).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": "TwilioProxy/1.1",
            "X-Twilio-Signature": self.signature(url, params) if signature is None else signature,
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        status = await self.callback(url, body, headers)
        self.callback_answers.append((url, status))
        return status

    async def deliver(self, sender: str, body: str, **options: Any) -> int:
        """An inbound SMS from ``sender``, posted to :attr:`inbound_url`; its answer's status."""
        if self.inbound_url is None:
            raise RuntimeError("FakeTwilio.inbound_url is not set")
        return await self.post(self.inbound_url, self.inbound_params(sender, body, **options))

    async def report(self, sent: Sent, status: str, error_code: int | None = None) -> int:
        """A status callback of ``sent`` to its ``StatusCallback``; its answer's status."""
        url = sent.params["StatusCallback"]
        answer = await self.post(url, self.status_params(sent, status, error_code))
        sent.callbacks.append(status)
        return answer

    def by_sid(self, message_sid: str) -> Sent:
        return next(sent for sent in self.sends if sent.sid == message_sid)

    # --- plumbing ----------------------------------------------------------------------------

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    @web.middleware
    async def _gate(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Counts, simulates an outage, checks basic auth, turns refusals into answers."""
        self.requests += 1
        if self.outage_left > 0 or self.outage:
            self.outage_left = max(0, self.outage_left - 1)
            return twilio_error(500, 20500)
        if request.headers.get("Authorization") != self._basic():
            return twilio_error(401, 20003)
        try:
            if request.match_info.get("account") != self.account_sid:
                raise Failure(twilio_error(404, 20404, path=request.path))
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
            return twilio_error(404, 20404, path=request.path)

    def _basic(self) -> str:
        login = f"{self.account_sid}:{self.auth_token}".encode()
        return "Basic " + base64.b64encode(login).decode()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- routes ------------------------------------------------------------------------------

    async def _account(self, request: web.Request) -> web.Response:
        now = formatdate(usegmt=True)
        return web.json_response(
            {
                "auth_token": self.auth_token,
                "date_created": now,
                "date_updated": now,
                "friendly_name": self.friendly_name,
                "owner_account_sid": self.account_sid,
                "sid": self.account_sid,
                "status": "active",
                "subresource_uris": {
                    "messages": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
                },
                "type": "Full",
                "uri": f"/{API_VERSION}/Accounts/{self.account_sid}.json",
            }
        )

    async def _messages(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        params = await self._form(request)
        self._check_message(params)
        if self._failures:
            raise Failure(self._failures.pop(0))
        to = params["To"]
        if to in self.unsubscribed:
            raise Failure(twilio_error(400, 21610))
        if to in self.landlines:
            raise Failure(twilio_error(400, 21614))
        sent = Sent(params, sid("SM"), at)
        self.sends.append(sent)
        if self.auto_status and "StatusCallback" in params:
            self._spawn(self._statuses(sent))
        return web.json_response(self._resource(sent), status=201)

    async def _form(self, request: web.Request) -> dict[str, str]:
        if request.content_type != "application/x-www-form-urlencoded":
            raise Refused(
                f"content type {request.content_type!r}, not a form",
                twilio_error(400, 21604),
            )
        try:
            pairs = parse_qsl((await request.read()).decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise Refused("the form is not UTF-8", twilio_error(400, 21604)) from None
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise Refused(f"repeated parameters in {names}", twilio_error(400, 21604))
        if unknown := sorted(set(names) - MESSAGE_PARAMS):
            raise Refused(f"unknown parameter(s) {unknown}", twilio_error(400, 21604))
        return dict(pairs)

    def _check_message(self, params: dict[str, str]) -> None:
        to = params.get("To")
        if not to:
            raise Refused("no To", twilio_error(400, 21604))
        if not E164.fullmatch(to):
            raise Refused(f"To {to!r} is not E.164", twilio_error(400, 21211, to=to))
        sender, service = params.get("From"), params.get("MessagingServiceSid")
        if (sender is None) == (service is None):
            raise Refused(
                "needs exactly one of From and MessagingServiceSid", twilio_error(400, 21603)
            )
        if sender is not None and sender != self.number:
            raise Failure(twilio_error(400, 21606))
        if service is not None and service != self.service_sid:
            raise Failure(twilio_error(400, 21701, service=service))
        body = params.get("Body")
        if not body:
            raise Refused("no Body", twilio_error(400, 21602))
        if len(body) > 1600:
            raise Refused(f"a Body of {len(body)} characters", twilio_error(400, 21617))
        if "StatusCallback" not in params:
            raise Refused("no StatusCallback: its statuses would be lost", twilio_error(400, 21609))
        parts = urlsplit(params["StatusCallback"])
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not HOSTNAME.fullmatch(host):
            raise Refused(
                f"StatusCallback {params['StatusCallback']!r} is no URL with a valid hostname",
                twilio_error(400, 21609),
            )

    def _resource(self, sent: Sent) -> dict[str, Any]:
        """The Message resource of an accepted send, as Twilio answers it."""
        params = sent.params
        service = params.get("MessagingServiceSid")
        now = formatdate(usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sent.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": params["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": None if service else params["From"],
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "0" if service else "1",
            "price": None,
            "price_unit": "USD",
            "sid": sent.sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": params["To"],
            "uri": f"{uri}.json",
        }

    async def _statuses(self, sent: Sent) -> None:
        await asyncio.sleep(self.status_delay)
        failed = sent.params["To"] in self.unreachable
        steps: list[tuple[str, int | None]] = [("queued", None), ("sent", None)]
        steps.append(("undelivered", 30003) if failed else ("delivered", None))
        for status, code in steps:
            try:
                await self.report(sent, status, code)
            except Exception as exc:  # a test's receiver may fail any way: keep it, go on
                self.callback_errors.append(f"{status} of {sent.sid}: {exc!r}")


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[FakeTwilio]:
    """A started fake, stopped on the way out."""
    fake = FakeTwilio(**options)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
