"""Ids: ULIDs in Crockford base32, strictly increasing within a process, time first."""

from __future__ import annotations

import random
import time

from zapgate import ids

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def digits_of(value: int) -> str:
    """The reference: 26 digits, 5 bits at a time, most significant first."""
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


def value_of(digits: str) -> int:
    value = 0
    for digit in digits:
        value = value << 5 | CROCKFORD.index(digit)
    return value


def test_the_encoding_is_crockford_base32_of_the_130_low_bits() -> None:
    generator = random.Random(9)
    for value in [0, 1, 2**128 - 1, 2**130 - 1, *(generator.getrandbits(130) for _ in range(2000))]:
        assert ids._encode(value) == digits_of(value)


def test_ids_strictly_increase_and_start_with_the_time() -> None:
    before = time.time_ns() // 1_000_000
    made = [ids.new_id("msg") for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    for made_id in (made[0], made[-1]):
        prefix, ulid = made_id.split("_")
        assert prefix == "msg"
        assert len(ulid) == 26
        assert set(ulid) <= set(CROCKFORD)
        assert before <= value_of(ulid[:10]) <= after  # 48-bit milliseconds first
