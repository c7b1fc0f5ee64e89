"""The Bot API's errors (``{"ok": false, "error_code", "description", "parameters"}``), sorted
into what a retry may fix, what fails the session, and what fails one message."""

from __future__ import annotations

from typing import Any

NO_ANSWER = -1
"""No answer from the Bot API (the network, a timeout, an answer that is not the Bot API's)."""
UNSAFE = -2
"""The SSRF guard refused ``api_base``'s address (a config problem: like a bad token)."""
TOO_LARGE = -3
"""A file larger than zapgate's media limit."""
AUTH = frozenset({401, 404, UNSAFE})
"""The token is refused (401), or malformed or not this server's (Telegram answers 404 to any
method of an unknown token): the session fails until its config is fixed."""
HINTS = {
    "chat not found": "the bot can write only to chats that wrote to it first or that it is in",
    "bot was blocked by the user": "the user blocked the bot",
    "user is deactivated": "the user's account is deleted",
    "bot is not a member": "the bot is not in this chat",
    "bot was kicked": "the bot was removed from this chat",
    "message to be replied not found": "the message replied to is gone",
    "message to react not found": "the message reacted to is gone",
    "reaction_invalid": "this chat does not allow that reaction",
}


class BotApiError(Exception):
    """What the Bot API answered instead of a result."""

    def __init__(
        self,
        code: int,
        description: str,
        retry_after: float | None = None,
        migrate_to: int | None = None,
    ) -> None:
        super().__init__(code, description)
        self.code = code
        self.description = description
        self.retry_after = retry_after
        """Seconds Telegram asks to wait (a 429's ``parameters.retry_after``)."""
        self.migrate_to = migrate_to
        """The new id of a group that became a supergroup."""

    @property
    def transient(self) -> bool:
        """Whether trying again later may work: flood control, Telegram's own failures, no
        answer at all."""
        return self.code in (NO_ANSWER, 429) or self.code >= 500

    @property
    def auth(self) -> bool:
        """Whether the token (or ``api_base``) is the problem, not the message."""
        return self.code in AUTH

    def __str__(self) -> str:
        said = self.description
        if self.code > 0:
            said = f"Telegram error {self.code}: {said}"
        lowered = said.lower()
        hint = next((h for key, h in HINTS.items() if key in lowered), None)
        if hint:
            said = f"{said} ({hint})"
        if self.migrate_to is not None:
            said = f"{said} (the group is now the supergroup {self.migrate_to})"
        if self.retry_after is not None:
            said = f"{said} (retry after {self.retry_after:g} s)"
        return said


def from_body(body: Any, http_status: int) -> BotApiError:
    """The error in a Bot API answer, or one describing the answer when it holds none."""
    if not isinstance(body, dict) or body.get("ok") is not False:
        return BotApiError(
            NO_ANSWER if http_status < 400 else http_status,
            f"the Bot API answered HTTP {http_status} without its error",
        )
    code = body.get("error_code")
    parameters = body.get("parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    retry_after = parameters.get("retry_after")
    migrate_to = parameters.get("migrate_to_chat_id")
    return BotApiError(
        code if isinstance(code, int) and not isinstance(code, bool) else http_status,
        str(body.get("description") or "no description")[:500],
        float(retry_after) if isinstance(retry_after, int | float) and retry_after >= 0 else None,
        migrate_to if isinstance(migrate_to, int) and not isinstance(migrate_to, bool) else None,
    )
