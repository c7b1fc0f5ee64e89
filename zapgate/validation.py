"""Input that could be stored must also be readable back: one check for every JSON value.

Refused anywhere in a value (keys included): NUL characters (PostgreSQL text cannot hold them),
lone surrogates (no UTF-8 form, so no JSON output), integers outside 64 bits, NaN and infinities,
and nesting deeper than ``MAX_DEPTH``.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, StrictInt, ValidationError

from zapgate.errors import InvalidInput

MAX_DEPTH = 32
MAX_VALUES = 20_000
"""Values (containers and leaves) a JSON body may hold: bounds the walk, whatever the body."""
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ESCAPES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
"""A NUL or surrogate escape (the JSON text of what ``text_problem`` refuses)."""
_NUMBERS = bytes(
    ord("X")
    if byte in b"0123456789"
    else ord("E")
    if byte in b"eE"
    else byte
    if byte == ord("+")
    else ord(".")
    for byte in range(256)
)
"""Digits to X, exponents to E, the rest to ``.``: long numbers become searchable as text."""
INT64_MAX = 2**63 - 1
Loc = tuple[str | int, ...]


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    if "\x00" in text:
        return "NUL characters are not allowed"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "lone surrogates (invalid Unicode) are not allowed"
    return None


def clearly_fine(raw: bytes) -> bool:
    """True when raw JSON cannot hold anything ``problems`` refuses: no deep nesting, no NUL or
    surrogate escape, no 19-digit number or 3-digit exponent, no NaN or Infinity. Checked at C
    speed (a few ms for a megabyte), so nearly every body skips the walk."""
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH or _ESCAPES.search(raw):
        return False
    if b"NaN" in raw or b"Infinity" in raw:
        return False
    numbers = raw.translate(_NUMBERS)
    return b"X" * 19 not in numbers and b"EXXX" not in numbers and b"E+XXX" not in numbers


def problems(value: Any, loc: Loc = (), max_depth: int = MAX_DEPTH) -> list[dict[str, Any]]:
    """Every problem of a parsed JSON value, as validation error items (``loc``, ``msg``).

    The walk stops after ``MAX_VALUES`` values (a problem in itself), so its cost is bounded.
    """
    found: list[dict[str, Any]] = []
    stack: list[tuple[Any, Loc, int]] = [(value, loc, 0)]
    walked = 0
    while stack and len(found) < 20:
        walked += 1
        if walked > MAX_VALUES:
            found.append(_problem(loc, f"more than {MAX_VALUES} values", "size"))
            break
        item, where, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                found.append(_problem(where, f"nested deeper than {max_depth} levels", "depth"))
                continue
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str) and (problem := text_problem(key)):
                    found.append(_problem((*where, key), f"key: {problem}", "text"))
                stack.append((child, (*where, key), depth + 1))
        elif isinstance(item, str):
            if problem := text_problem(item):
                found.append(_problem(where, problem, "text"))
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -INT64_MAX - 1 <= item <= INT64_MAX:
                found.append(_problem(where, "integers must fit in 64 bits", "int_range"))
        elif isinstance(item, float) and not math.isfinite(item):
            found.append(_problem(where, "numbers must be finite", "float_range"))
    return found


def check(value: Any, loc: Loc = ()) -> None:
    """InvalidInput listing the problems of ``value`` (see ``problems``)."""
    found = problems(value, loc)
    if found:
        raise InvalidInput(found)


def _problem(loc: Loc, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": [_printable(part) for part in loc], "msg": msg, "type": f"boundary_{kind}"}


def _printable(part: str | int) -> str | int:
    """A location part that can itself be rendered (a bad key is shown escaped)."""
    if isinstance(part, int) or text_problem(part) is None:
        return part
    return part.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def scrub_text(text: str) -> str:
    """``text`` made storable: NUL and lone surrogates become U+FFFD (for what engines report,
    which is stored as received rather than refused)."""
    if text_problem(text) is None:
        return text
    return _UNSTORABLE.sub("\ufffd", text)


def scrub(value: Any, depth: int = 0) -> Any:
    """A JSON-like value from an engine made storable (strings scrubbed, depth capped)."""
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {scrub_text(str(k)): scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(item, depth + 1) for item in value]
    return value


def located(error: ValidationError, *where: str) -> InvalidInput:
    """``error``'s problems as an InvalidInput, each located under ``where`` (``"body"``, ...)."""
    return InvalidInput(
        [
            {"loc": [*where, *item["loc"]], "msg": item["msg"], "type": item["type"]}
            for item in error.errors(include_url=False)
        ]
    )


def whole(value: Any) -> Any:
    """A JSON integer may be written ``5.0``: it is 5 (anything else is left to the type)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


JsonInt = Annotated[StrictInt, BeforeValidator(whole)]
"""An integer as JSON Schema means it: ``5`` or ``5.0``, never ``"5"`` or ``true``."""
