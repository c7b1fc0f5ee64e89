"""How deliveries are paced: the retry schedule and the concurrency caps."""

from __future__ import annotations

import random
from dataclasses import dataclass

MAX_DELAY_SECONDS = 86_400.0


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """When attempts happen: ``schedule[n]`` seconds after the n-th failure (first one: [0])."""

    schedule: tuple[float, ...]
    disable_after: int
    jitter: float = 0.2

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds until the next attempt after ``attempts`` failures, None when out of tries."""
        if attempts >= len(self.schedule):
            return None
        scheduled = self.schedule[attempts] * rng.uniform(1 - self.jitter, 1 + self.jitter)
        return min(max(scheduled, retry_after or 0.0), MAX_DELAY_SECONDS)


@dataclass(frozen=True, slots=True)
class Concurrency:
    """Requests in flight at once: per subscription (sessions served side by side), per tenant
    and in all. A tenant with many subscriptions, or many dead receivers, fills its own share
    and never more; every cap must be at least 1."""

    per_subscription: int = 4
    per_tenant: int = 16
    overall: int = 64

    def __post_init__(self) -> None:
        if min(self.per_subscription, self.per_tenant, self.overall) < 1:
            raise ValueError("webhook concurrency caps must be at least 1")
