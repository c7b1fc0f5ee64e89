"""GSM-7 and UCS-2 segments: known answers worked out from GSM 03.38 and the 160/153 and 70/67
limits, including texts where splitting an escape or a surrogate pair would save a segment."""

from __future__ import annotations

import pytest

from zapgate.engines.sms.segments import BASIC, EXTENSION, count


def test_the_alphabets_have_their_sizes() -> None:
    assert len(BASIC) == 127  # 128 code points, less the escape
    assert len(EXTENSION) == 10
    assert not BASIC & EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("GSM-7", 1)),
        ("Oi! Seu pedido #123 saiu às 10h.", ("GSM-7", 1)),  # "à" is in the alphabet
        ("Você saiu às 10h?", ("UCS-2", 1)),  # "ê" is not
        ("Ç", ("GSM-7", 1)),
        ("ç", ("UCS-2", 1)),  # only the capital is in the alphabet
        ("Olá", ("UCS-2", 1)),
        ("Olá 👋", ("UCS-2", 1)),
        ("a" * 160, ("GSM-7", 1)),
        ("a" * 161, ("GSM-7", 2)),
        ("a" * 306, ("GSM-7", 2)),
        ("a" * 307, ("GSM-7", 3)),
        ("€" * 80, ("GSM-7", 1)),  # 160 septets
        ("€" * 81, ("GSM-7", 2)),
        ("a" * 159 + "^", ("GSM-7", 2)),  # the escape makes it 161
        ("a" * 152 + "€" + "a" * 152, ("GSM-7", 3)),  # 306 septets, but € starts part two
        ("{[|]}\\~^\f", ("GSM-7", 1)),
        ("ã" * 70, ("UCS-2", 1)),
        ("ã" * 71, ("UCS-2", 2)),
        ("ã" * 134, ("UCS-2", 2)),
        ("ã" * 135, ("UCS-2", 3)),
        ("😀" * 35, ("UCS-2", 1)),  # 70 code units
        ("😀" * 36, ("UCS-2", 2)),  # 33 a part
        ("😀" * 67, ("UCS-2", 3)),
        ("ã" * 66 + "😀" + "ã" * 66, ("UCS-2", 3)),  # 134 units, but the pair starts part two
        ("a" * 69 + "€" + "ç", ("UCS-2", 2)),  # one UCS-2 character makes the whole text UCS-2
    ],
)
def test_known_answers(text: str, expected: tuple[str, int]) -> None:
    assert count(text) == expected
