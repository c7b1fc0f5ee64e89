"""The per-session config of the simulator engine, checked by the session API (bad input: 422).

Every field is optional; ``SimulatorConfig.model_validate({})`` is a quick, well-behaved phone.
Latencies are drawn from the engine's seeded ``random.Random``, so a seed replays a run.

Sessions of many tenants share one process, so every knob is bounded: no period under a second
(heartbeats, QR codes, random disconnects), no wait over an hour, at most 100 QR codes, and
reply rules that are RE2 patterns (linear time, bounded memory, no backtracking) with a budget
of work per send. One session on its own therefore costs a small, fixed rate of events.
"""

from __future__ import annotations

import json
import random
from functools import cached_property
from itertools import islice
from typing import Annotated, Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zapgate.engines.base import SEND_TYPES
from zapgate.engines.simulator_directory import AddressBook
from zapgate.errors import InvalidPhoneNumber
from zapgate.phone import normalize_number

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

MAX_WAIT_SECONDS = 3600.0
"""The longest any latency, reply delay or QR refresh can be."""
MIN_PERIOD_SECONDS = 1.0
"""The shortest heartbeat, QR refresh or mean time between random disconnects."""
MAX_PAIRING_SECONDS = 600.0
MAX_QR_ATTEMPTS = 100
MAX_RULES = 100
MAX_REPLIES_PER_SEND = 3
"""A send is answered by at most this many rules (the first that match), plus the echo."""
MATCH_WINDOW = 1024
"""Rules look at the first this many characters of a text."""
RULE_MAX_MEM = 64 * 1024
"""RE2's memory budget per rule (bytes): its program and its DFA cache."""
RULE_MAX_PROGRAM = 500
"""RE2 instructions a rule may compile to; ``RULES_MAX_PROGRAM`` for all rules together. A
send's matching costs at most (bytes in the window) x (all instructions): tens of ms."""
RULES_MAX_PROGRAM = 2000
PARSED_KEPT = 256
"""Distinct configs kept parsed (see ``parse_config``)."""

_Seconds = Annotated[float, Field(ge=0, le=MAX_WAIT_SECONDS)]


def _phone(value: str) -> str:
    """A normalised number, or ValueError (so pydantic reports it)."""
    try:
        return normalize_number(value)
    except InvalidPhoneNumber as error:
        raise ValueError(str(error)) from None


MessageType = Literal[
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contact",
    "reaction",
    "poll",
]


class FixedLatency(BaseModel):
    """Always ``seconds``."""

    model_config = _STRICT
    kind: Literal["fixed"]
    seconds: _Seconds

    def sample(self, rng: random.Random) -> float:
        """Seconds to wait."""
        return self.seconds


class UniformLatency(BaseModel):
    """Anywhere between ``min`` and ``max``."""

    model_config = _STRICT
    kind: Literal["uniform"]
    min: _Seconds
    max: _Seconds

    @model_validator(mode="after")
    def _ordered(self) -> UniformLatency:
        if self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self

    def sample(self, rng: random.Random) -> float:
        """Seconds to wait."""
        return rng.uniform(self.min, self.max)


class ExponentialLatency(BaseModel):
    """Exponentially distributed around ``mean`` (many short waits, a few long ones), capped."""

    model_config = _STRICT
    kind: Literal["exponential"]
    mean: _Seconds

    def sample(self, rng: random.Random) -> float:
        """Seconds to wait."""
        return _capped(rng.expovariate(1 / self.mean)) if self.mean > 0 else 0.0


class NormalLatency(BaseModel):
    """Normally distributed, clipped at zero and at an hour."""

    model_config = _STRICT
    kind: Literal["normal"]
    mean: _Seconds
    stddev: _Seconds

    def sample(self, rng: random.Random) -> float:
        """Seconds to wait."""
        return _capped(max(0.0, rng.gauss(self.mean, self.stddev)))


Latency = Annotated[
    FixedLatency | UniformLatency | ExponentialLatency | NormalLatency,
    Field(discriminator="kind"),
]


def fixed(seconds: float) -> FixedLatency:
    """A fixed latency."""
    return FixedLatency(kind="fixed", seconds=seconds)


def _capped(seconds: float) -> float:
    return min(seconds, MAX_WAIT_SECONDS)


def compile_pattern(pattern: str) -> Any:
    """``pattern`` compiled by RE2 for a rule (case-insensitive), or ValueError saying why not."""
    options = re2.Options()
    options.case_sensitive = False
    options.never_capture = True
    options.log_errors = False
    options.max_mem = RULE_MAX_MEM
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"RE2 cannot use this pattern: {reason} (RE2 has no backreferences or lookaround)"
        ) from None
    except UnicodeEncodeError:
        raise ValueError("RE2 cannot use this pattern: it is not valid Unicode") from None
    if compiled.programsize > RULE_MAX_PROGRAM:
        raise ValueError(
            f"too complex: RE2 compiles it to {compiled.programsize} instructions"
            f" (at most {RULE_MAX_PROGRAM} a rule)"
        )
    return compiled


class Rule(BaseModel):
    """An automatic reply: a sent text matching ``match`` is answered with ``reply``.

    ``match`` is an RE2 pattern (no backreferences or lookaround), searched case-insensitively
    in the first ``MATCH_WINDOW`` characters of the text, in linear time.
    """

    model_config = _STRICT
    match: str = Field(
        max_length=500,
        description=f"an RE2 pattern, searched case-insensitively in the first {MATCH_WINDOW}"
        " characters of a text (no backreferences or lookaround)",
    )
    reply: str = Field(min_length=1, max_length=4096)
    after_ms: int = Field(default=0, ge=0, le=int(MAX_WAIT_SECONDS * 1000))
    contact: str | None = Field(default=None, description="only texts sent to this number")

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_pattern(value)
        return value

    @cached_property
    def compiled(self) -> Any:
        """The RE2 pattern (kept out of equality: two rules alike are equal)."""
        return compile_pattern(self.match)

    @property
    def cost(self) -> int:
        """RE2 instructions of the pattern: matching costs at most this per byte of text."""
        size: int = self.compiled.programsize
        return size

    @field_validator("contact")
    @classmethod
    def _contact(cls, value: str | None) -> str | None:
        return None if value is None else _phone(value)

    def applies(self, to: str, text: str) -> bool:
        """True when a text sent to ``to`` gets this reply."""
        if self.contact is not None and self.contact != to:
            return False
        window = text[:MATCH_WINDOW].encode("utf-8", "surrogatepass")
        return self.compiled.search(window) is not None


class SimulatorConfig(BaseModel):
    """How one simulated phone behaves; every timing and count is bounded (see the module).

    A send is answered by at most ``MAX_REPLIES_PER_SEND`` rules (the first that match, in
    order) plus the echo contact, so one send sets off at most six events (two acks, four
    replies).
    """

    model_config = _STRICT

    seed: int | None = Field(default=None, description="replay the same run (None: random)")
    pairing: Literal["auto", "manual"] = "auto"
    pairing_seconds: float | None = Field(default=None, ge=0, le=MAX_PAIRING_SECONDS)
    qr_refresh_seconds: float = Field(default=20, ge=MIN_PERIOD_SECONDS, le=MAX_WAIT_SECONDS)
    qr_attempts: int = Field(default=5, ge=1, le=MAX_QR_ATTEMPTS)
    send_latency: Latency = Field(default_factory=lambda: fixed(0))
    delivered_latency: Latency | None = None
    read_latency: Latency | None = None
    reconnect_latency: Latency = Field(default_factory=lambda: fixed(1.0))
    send_failure_rate: float = Field(default=0, ge=0, le=1)
    failure_kind: Literal["transient", "permanent"] = "transient"
    disconnect_mean_seconds: float | None = Field(default=None, ge=MIN_PERIOD_SECONDS, le=86_400)
    heartbeat_seconds: float = Field(default=10, ge=MIN_PERIOD_SECONDS, le=MAX_WAIT_SECONDS)
    own_number: str = "5511000000000"
    push_name: str = Field(default="zapgate simulator", max_length=100)
    echo_contact: str | None = Field(default=None, description='None: the default; "": no echo')
    types: list[MessageType] | None = Field(
        default=None,
        min_length=1,
        max_length=len(SEND_TYPES),
        description="the message types this phone can send (None: all)",
    )
    call_mean_seconds: float | None = Field(
        default=None,
        ge=MIN_PERIOD_SECONDS,
        le=86_400,
        description="calls the session now and then, this many seconds apart on average "
        "(None: only on POST .../simulate/call)",
    )
    caller: str | None = Field(
        default=None, description="who those calls are from (None: the echo contact)"
    )
    contacts: AddressBook = Field(
        default_factory=list,
        description="the address book: number, name, lid, picture (see "
        "zapgate.engines.simulator_directory for everyone else)",
    )
    rules: list[Rule] = Field(
        default_factory=list,
        max_length=MAX_RULES,
        description=f"scripted replies; a send is answered by the first {MAX_REPLIES_PER_SEND}"
        " that match",
    )

    @field_validator("own_number")
    @classmethod
    def _own_number(cls, value: str) -> str:
        return _phone(value)

    @field_validator("echo_contact")
    @classmethod
    def _echo_contact(cls, value: str | None) -> str | None:
        return value if not value else _phone(value)

    @field_validator("caller")
    @classmethod
    def _caller(cls, value: str | None) -> str | None:
        return None if value is None else _phone(value)

    @field_validator("rules")
    @classmethod
    def _affordable(cls, rules: list[Rule]) -> list[Rule]:
        cost = sum(rule.cost for rule in rules)
        if cost > RULES_MAX_PROGRAM:
            raise ValueError(
                f"the rules are too complex together: {cost} RE2 instructions"
                f" (at most {RULES_MAX_PROGRAM})"
            )
        return rules

    def replies_to(self, to: str, text: str) -> list[Rule]:
        """The rules that answer a text sent to ``to``: the first few that match, in order."""
        matching = (rule for rule in self.rules if rule.applies(to, text))
        return list(islice(matching, MAX_REPLIES_PER_SEND))


def parse_config(config: dict[str, Any]) -> SimulatorConfig:
    """A session's config; raises pydantic.ValidationError.

    Configs are frozen, so sessions with equal configs share one: a node starting thousands of
    sessions alike validates it once and keeps one copy.
    """
    try:
        key = json.dumps(config, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):  # not plain JSON (never so when stored): not shared
        return SimulatorConfig.model_validate(config)
    parsed = _parsed.get(key)
    if parsed is None:
        parsed = SimulatorConfig.model_validate(config)
        if len(_parsed) >= PARSED_KEPT:
            _parsed.clear()
        _parsed[key] = parsed
    return parsed


_parsed: dict[str, SimulatorConfig] = {}
