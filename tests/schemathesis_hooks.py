"""Schemathesis reports that are not breaks of the contract, each dropped with its reason.

Everything else schemathesis finds fails tests/test_schemathesis.py. Keep this list short and
every entry precise (a response's error code, a single generated scenario), never a whole check.
"""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.openapi.checks import RejectedPositiveData

from zapgate.validation import problems

# A schema-valid request that only the running service can refuse, with the documented 422:
DECIDED_AT_RUN_TIME = {
    # the same Idempotency-Key with another body (documented on every route that takes one)
    "idempotency_key_mismatch",
    # the SSRF policy: only http(s) URLs to public hosts
    "unsafe_url",
    # which engines exist and can run on this machine is known only at run time
    "engine_unavailable",
    "unsupported",
    # whether a number has WhatsApp is the engine's word (chats, contacts and groups routes)
    "not_on_whatsapp",
    # what a file is: sniffed from its bytes (an image must be one), or a URL that answers no file
    "media_rejected",
    # a message type the session's engine cannot send
    "unsupported_message_type",
    # Meta's rules across an interactive message's fields: distinct ids, 10 rows in all
    "invalid_interactive",
    # which addresses a session reaches depends on its channel (a Telegram chat id on WhatsApp)
    "invalid_recipient",
    # a fallback's session must be an SMS session of the tenant: known only at run time
    "invalid_fallback",
    # a sink's names: {tenant}, {session} and {type} only, a NATS subject's fixed first token
    "invalid_sink",
}
CHAT_PATHS = {
    "/api/v1/sessions/{session}/messages",
    "/api/v1/sessions/{session}/integrations/bot/chats/{chat}/pause",
    "/api/v1/sessions/{session}/integrations/bot/chats/{chat}/resume",
}
"""Routes whose ``chat`` (or ``to``) takes a number or any chat id: a number is checked then."""
# Header names the schema's pattern allows but zapgate sets itself (webhook-*, content-type).
RESERVED_HEADER = "is set by zapgate and cannot be overridden"
# The coverage phase adds a header of its own to a request and calls it invalid; HTTP servers
# ignore headers they do not know (RFC 9110, 5.1), so accepting it is right.
UNKNOWN_HEADERS = {"x-schemathesis-unknown-property", "schemathesis-unknown-property"}


_keys = itertools.count()


@schemathesis.hook
def map_headers(context: Any, headers: dict[str, Any] | None) -> dict[str, Any] | None:
    """A fresh Idempotency-Key per request, so creates get past the key to the route itself.

    Generated keys repeat (``!``, ``0``, ...), and a repeated key with another body is the
    documented 422 every time. Replays of a key are tested in tests/test_idempotency.py.
    """
    key = (headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and key:
        headers = {**(headers or {}), "Idempotency-Key": f"{key[:240]}-{next(_keys)}"}
    return headers


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Drop bodies the boundary validation refuses where a JSON Schema cannot say so.

    Free-form objects (a session's ``metadata`` and ``config``) take any JSON except what
    ``zapgate.validation`` refuses (integers beyond 64 bits, lone surrogates, nesting deeper
    than 32 levels; issue 8, finding 4). Those get a 422 that schemathesis would call a
    rejected valid request; they are tested by tests/http/test_boundary.py.
    """
    return not problems(case.body)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but the ones described above."""
    if isinstance(failure, AcceptedNegativeData):
        return not _only_an_unknown_header(case)
    if isinstance(failure, RejectedPositiveData) and response.status_code == 422:
        return not _decided_at_run_time(case, response)
    return True


def _only_an_unknown_header(case: Any) -> bool:
    names = {name.lower() for name in (case.headers or {})}
    return bool(names & UNKNOWN_HEADERS)


def _decided_at_run_time(case: Any, response: Any) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    error, detail = body.get("error"), body.get("detail")
    if error in DECIDED_AT_RUN_TIME:
        return True
    if error == "invalid_input" and isinstance(detail, str):
        return RESERVED_HEADER in detail
    if error == "invalid_input" and isinstance(detail, list):
        return all(_engine_config(problem.get("loc", [])) for problem in detail)
    if error == "invalid_phone_number":
        # `chat` takes a number or any other chat id; only a number is checked, at run time
        return case.operation.path in CHAT_PATHS
    return False


def _engine_config(loc: list[Any]) -> bool:
    """A session's ``config`` is checked by its engine's own model."""
    return loc[:2] == ["body", "config"]
