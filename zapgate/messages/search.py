"""History search (``q=``): the words of a text, folded the same way for every database.

A word is a run of letters and digits in any script. Folding makes a search case- and
accent-insensitive: Unicode compatibility forms are unified (``ﬁ`` is ``fi``, ``½`` is ``1⁄2``),
case is folded, and marks (accents) are dropped, so ``Não`` and ``NAO`` both give ``nao``; the
other numeric signs (``৴``, which PostgreSQL's parser drops) separate words.
Messages keep their folded words in ``messages.search_text`` (written by the repository); the
databases index that column with their plainest tokenizer (SQLite FTS5 ``unicode61``,
PostgreSQL's ``simple`` configuration), so neither applies rules of its own (stemming, stop
words, locale-dependent case or accents) and both find the same messages.

A query is bounded in terms, what lies between spaces and ASCII punctuation, so that its
published pattern reads the same in every regex dialect (JSON Schema's is ECMA-262, where a
word character is ASCII; in Python it is Unicode). A term may hold no word (``🙂``) or several
(``a—b``).
"""

from __future__ import annotations

import re
import unicodedata

MAX_QUERY_LENGTH = 200
MAX_QUERY_TERMS = 10
_SPLIT = r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]"  # ASCII: all but letters and digits
_TERM = r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+"
QUERY_PATTERN = rf"^{_SPLIT}*{_TERM}({_SPLIT}+{_TERM}){{0,{MAX_QUERY_TERMS - 1}}}{_SPLIT}*$"
"""A query: 1 to MAX_QUERY_TERMS terms."""

_WORD = re.compile(r"[^\W_]+")
_QUERY = re.compile(QUERY_PATTERN)


def fold(text: str) -> str:
    """``text`` without case, accents or compatibility forms: ``Não É`` -> ``nao e``."""
    return text.lower() if text.isascii() else text.translate(_FOLDS)


def _fold_character(character: str) -> str:
    """One character's fold (a text's is its characters', one by one)."""
    decomposed = unicodedata.normalize("NFKD", character)
    decomposed = unicodedata.normalize("NFKD", decomposed.casefold())
    return unicodedata.normalize("NFC", "".join(map(_bare, decomposed)))


def _bare(character: str) -> str:
    category = unicodedata.category(character)
    if category[0] == "M":
        return ""
    return " " if category == "No" else character


class _Folds(dict[int, str]):
    """``str.translate``'s table for ``fold``: each character's fold, kept once computed for
    the first ``_KEPT`` characters met (then computed each time: the memory stays bounded
    whatever the texts)."""

    def __missing__(self, code: int) -> str:
        folded = _fold_character(chr(code))
        if len(self) < _KEPT:
            self[code] = folded
        return folded


_KEPT = 4096
_FOLDS = _Folds()


def words(text: str) -> list[str]:
    """The folded words of ``text``, in order (repeats kept)."""
    return _WORD.findall(fold(text))


def document(text: str | None) -> str | None:
    """What a message's text is searched by: its folded words, one space apart (None: no
    words)."""
    found = words(text) if text else []
    return " ".join(found) if found else None


def query(text: str) -> tuple[str, ...] | None:
    """The distinct folded words a message must have to match ``text`` (none: no message
    matches), or None when ``text`` is not a query (``QUERY_PATTERN``)."""
    if _QUERY.fullmatch(text) is None:
        return None
    return tuple(dict.fromkeys(words(text)))
