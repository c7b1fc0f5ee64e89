"""The read hot path: plain history pages served without the framework's per-request machinery.

``GET /api/v1/sessions/{session}/messages`` with at most ``cursor`` and ``limit``, and
``GET /whatsapp/messages`` with at most ``before`` and ``limit``: what a client paging through
history sends. This layer answers them with the same query and the same body builders as the
routes. Any other query (filters, a repeated or empty parameter, a limit that is not plain
digits in range), and any request without a key, goes to FastAPI unchanged, so every refusal is
still rendered by the routes and the routes stay the documented contract.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from zapgate.auth.scopes import Scope as KeyScope
from zapgate.compat.api import legacy_page
from zapgate.errors import AppError
from zapgate.http.errors import app_error_response, error_response
from zapgate.http.ratelimit import ADMITTED
from zapgate.http.responses import direct_json
from zapgate.limits.gate import Admission
from zapgate.messages.api import ID_CURSOR, MAX_PAGE, history_body
from zapgate.messages.repository import HistoryQuery
from zapgate.names import SESSION_NAME
from zapgate.services import Services

log = logging.getLogger(__name__)
_V1_HISTORY = re.compile(r"^/api/v1/sessions/(" + SESSION_NAME.strip("^$") + r")/messages$")
_LEGACY_HISTORY = "/whatsapp/messages"
LEGACY_MAX_PAGE = 500
_ID = re.compile(ID_CURSOR)
"""A cursor the lane serves: a message id (any other goes to the route, which checks it)."""


class ReadFastLane:
    """Serves plain history pages directly; everything else goes to ``app`` untouched."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await self._serve(scope) if _is_get(scope) else None
        if answer is None:
            await self.app(scope, receive, send)
            return
        await answer(scope, receive, send)

    async def _serve(self, scope: Scope) -> ASGIApp | None:
        path = scope["path"]
        matched = _V1_HISTORY.match(path)
        if matched is None and path != _LEGACY_HISTORY:
            return None
        admission: Admission | None = scope.get(ADMITTED)
        if admission is None:  # no key: the framework answers (401, counted there once)
            return None
        legacy = matched is None
        cursor_name, page_max = ("before", LEGACY_MAX_PAGE) if legacy else ("cursor", MAX_PAGE)
        query = _plain_query(scope, cursor_name, page_max)
        if query is None:
            return None
        limit, cursor = query
        tenant = admission.principal.tenant
        session = self.services.settings.default_session if matched is None else matched.group(1)
        headers = admission.decision.headers() if admission.decision is not None else {}
        try:
            admission.principal.require(KeyScope.READ, session)  # as the routes' Reader
            await self.services.sessions.require(tenant, session)
            page = await self.services.messages.history(
                HistoryQuery(tenant=tenant, session=session, limit=limit, before=cursor)
            )
        except AppError as refused:  # the same rendering the routes use
            return app_error_response(refused)
        except Exception:
            log.exception("unhandled error on the read fast lane")
            return error_response(500, "internal_error", "an unexpected error was logged")
        if legacy:
            body, link = legacy_page(page, limit)
            return direct_json(200, body, {**headers, **link})
        payload: Any = history_body(page, limit)
        return direct_json(200, payload, headers)


def _is_get(scope: Scope) -> bool:
    """A GET the lane may serve (browser requests, with an ``Origin``, go the full path)."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    return not any(name == b"origin" for name, _ in scope["headers"])


def _plain_query(scope: Scope, cursor_name: str, page_max: int) -> tuple[int, str | None] | None:
    """``(limit, cursor)`` of a query with nothing else in it, or None to leave it to the route."""
    raw: bytes = scope.get("query_string", b"")
    if not raw.isascii():
        return None
    pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True)
    found = dict(pairs)
    if len(found) != len(pairs) or not set(found) <= {"limit", cursor_name}:
        return None
    limit_text = found.get("limit", "50")
    if not (limit_text.isascii() and limit_text.isdigit()) or not 1 <= int(limit_text) <= page_max:
        return None
    cursor = found.get(cursor_name)
    if cursor is not None and not _ID.fullmatch(cursor):
        return None  # the route answers it (a cursor of a page by time, or not a cursor)
    return int(limit_text), cursor
