"""The per-session config of the simulator engine, checked by the session API (bad input: 422).

Every field is optional; ``SimulatorConfig.model_validate({})`` is a quick, well-behaved phone.
Latencies are drawn from the engine's seeded ``random.Random``, so a seed replays a run.
"""

from __future__ import annotations

import random
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zapgate.errors import InvalidPhoneNumber
from zapgate.phone import normalize_number

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _phone(value: str) -> str:
    """A normalised number, or ValueError (so pydantic reports it)."""
    try:
        return normalize_number(value)
    except InvalidPhoneNumber as error:
        raise ValueError(str(error)) from None


class FixedLatency(BaseModel):
    """Always ``seconds``."""

    model_config = _STRICT
    kind: Literal["fixed"]
    seconds: float = Field(ge=0)

    def sample(self, rng: random.Random) -> float:
        """Seconds to wait."""
        return self.seconds


class UniformLatency(BaseModel):
    """Anywhere between ``min`` and ``max``."""

    model_config = _STRICT
    kind: Literal["uniform"]
    min: float = Field(ge=0)
    max: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> UniformLatency:
        if self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self

    def sample(self, rng: random.Random) -> float:
        """Seconds to wait."""
        return rng.uniform(self.min, self.max)


class ExponentialLatency(BaseModel):
    """Exponentially distributed around ``mean`` (many short waits, a few long ones)."""

    model_config = _STRICT
    kind: Literal["exponential"]
    mean: float = Field(ge=0)

    def sample(self, rng: random.Random) -> float:
        """Seconds to wait."""
        return rng.expovariate(1 / self.mean) if self.mean > 0 else 0.0


class NormalLatency(BaseModel):
    """Normally distributed, clipped at zero."""

    model_config = _STRICT
    kind: Literal["normal"]
    mean: float = Field(ge=0)
    stddev: float = Field(ge=0)

    def sample(self, rng: random.Random) -> float:
        """Seconds to wait."""
        return max(0.0, rng.gauss(self.mean, self.stddev))


Latency = Annotated[
    FixedLatency | UniformLatency | ExponentialLatency | NormalLatency,
    Field(discriminator="kind"),
]


def fixed(seconds: float) -> FixedLatency:
    """A fixed latency."""
    return FixedLatency(kind="fixed", seconds=seconds)


class Rule(BaseModel):
    """An automatic reply: a sent text matching ``match`` is answered with ``reply``."""

    model_config = _STRICT
    match: str = Field(max_length=500, description="a regex, searched case-insensitively")
    reply: str = Field(min_length=1, max_length=4096)
    after_ms: int = Field(default=0, ge=0)
    contact: str | None = Field(default=None, description="only texts sent to this number")

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value, re.IGNORECASE)
        except re.error as error:
            raise ValueError(f"not a valid regular expression: {error}") from None
        return value

    @field_validator("contact")
    @classmethod
    def _contact(cls, value: str | None) -> str | None:
        return None if value is None else _phone(value)

    def applies(self, to: str, text: str) -> bool:
        """True when a text sent to ``to`` gets this reply."""
        if self.contact is not None and self.contact != to:
            return False
        return re.search(self.match, text, re.IGNORECASE) is not None


class SimulatorConfig(BaseModel):
    """How one simulated phone behaves."""

    model_config = _STRICT

    seed: int | None = Field(default=None, description="replay the same run (None: random)")
    pairing: Literal["auto", "manual"] = "auto"
    pairing_seconds: float | None = Field(default=None, ge=0)
    qr_refresh_seconds: float = Field(default=20, gt=0)
    qr_attempts: int = Field(default=5, ge=1)
    send_latency: Latency = Field(default_factory=lambda: fixed(0))
    delivered_latency: Latency | None = None
    read_latency: Latency | None = None
    reconnect_latency: Latency = Field(default_factory=lambda: fixed(1.0))
    send_failure_rate: float = Field(default=0, ge=0, le=1)
    failure_kind: Literal["transient", "permanent"] = "transient"
    disconnect_mean_seconds: float | None = Field(default=None, gt=0)
    heartbeat_seconds: float = Field(default=10, gt=0)
    own_number: str = "5511000000000"
    push_name: str = Field(default="zapgate simulator", max_length=100)
    echo_contact: str | None = Field(default=None, description='None: the default; "": no echo')
    rules: list[Rule] = Field(default_factory=list, max_length=100)

    @field_validator("own_number")
    @classmethod
    def _own_number(cls, value: str) -> str:
        return _phone(value)

    @field_validator("echo_contact")
    @classmethod
    def _echo_contact(cls, value: str | None) -> str | None:
        return value if not value else _phone(value)


def parse_config(config: dict[str, Any]) -> SimulatorConfig:
    """A session's config; raises pydantic.ValidationError."""
    return SimulatorConfig.model_validate(config)
