"""Settings every engine honours, kept in a session's config beside the engine's own: ``calls``
(reject incoming calls, answer the caller with a text). The session manager acts on them, so
an engine only reports a call and rejects one when asked.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from zapgate.validation import located

MAX_REPLY = 4096


class CallPolicy(BaseModel):
    """What to do when someone calls the session's account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reject: StrictBool = Field(default=False, description="reject every incoming call")
    reply: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REPLY,
        description="a text sent to the caller (through the outbox, like any send)",
    )


SESSION_KEYS = frozenset({"calls"})
"""The keys of a session's config that are zapgate's, not its engine's."""
_NO_POLICY = CallPolicy()


def engine_options(config: dict[str, Any]) -> dict[str, Any]:
    """A session's config without zapgate's own keys: what its engine is given and checks."""
    if SESSION_KEYS.isdisjoint(config):
        return config
    return {key: value for key, value in config.items() if key not in SESSION_KEYS}


def check(config: dict[str, Any]) -> None:
    """InvalidInput (located in the body) when zapgate's keys of ``config`` are not valid."""
    if "calls" not in config:
        return
    try:
        CallPolicy.model_validate(config["calls"])
    except ValidationError as error:
        raise located(error, "body", "config", "calls") from None


def call_policy(config: dict[str, Any]) -> CallPolicy:
    """The session's call policy (nothing done when unset or, stored before a check, invalid)."""
    raw = config.get("calls")
    if raw is None:
        return _NO_POLICY
    try:
        return CallPolicy.model_validate(raw)
    except ValidationError:
        return _NO_POLICY
