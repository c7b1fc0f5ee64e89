"""Broker adapters for event sinks: RabbitMQ, NATS JetStream, Redis Streams; one protocol."""

from __future__ import annotations

from typing import Any

from zapgate.sinks.brokers.base import Broker, BrokerError, Guard

__all__ = ["KINDS", "Broker", "BrokerError", "Guard", "open_broker"]

KINDS = ("rabbitmq", "nats", "redis")


def open_broker(kind: str, config: dict[str, Any], guard: Guard, timeout_seconds: float) -> Broker:
    """kind: 'rabbitmq' | 'nats' | 'redis'. Connects lazily on the first publish; reconnects after
    a failure. ``config`` is already validated; the guard checks every address before a connect."""
    if kind == "rabbitmq":
        from zapgate.sinks.brokers.rabbitmq import RabbitMQ

        return RabbitMQ(config, guard, timeout_seconds)
    if kind == "nats":
        from zapgate.sinks.brokers.nats import Nats

        return Nats(config, guard, timeout_seconds)
    if kind == "redis":
        from zapgate.sinks.brokers.redis import RedisStreams

        return RedisStreams(config, guard, timeout_seconds)
    raise ValueError(f"unknown broker kind: {kind!r}")
