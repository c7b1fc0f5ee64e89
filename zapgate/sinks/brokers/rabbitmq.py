"""RabbitMQ through aio-pika: a durable topic exchange, publisher confirms, persistent messages.

Not aio-pika's robust connection: ``LazyBroker`` reconnects on the publish after a failure. The
messages are published ``mandatory`` unless the sink says otherwise: one that no queue's binding
takes is returned by RabbitMQ, and its delivery is recorded failed at once with the reason
(``returned``: not retried, so it holds up no later event of its session, and not counted
towards turning the sink off), instead of being confirmed and dropped unseen; a retry or a
replay sends it once a queue is bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq.exceptions as amqp
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from yarl import URL

from zapgate.sinks.brokers.base import (
    REFUSED_CREDENTIALS,
    BrokerError,
    Guard,
    LazyBroker,
    checked_url,
)


@dataclass(frozen=True)
class _Link:
    connection: AbstractConnection
    channel: AbstractChannel
    exchange: AbstractExchange


class RabbitMQ(LazyBroker[_Link]):
    """Publishes to ``config["exchange"]`` at ``config["url"]``; the target is the routing key."""

    def __init__(self, config: dict[str, Any], guard: Guard, timeout_seconds: float) -> None:
        super().__init__(guard, timeout_seconds)
        self._url = URL(config["url"])
        self._exchange = str(config["exchange"])
        self._mandatory = config.get("mandatory") is not False

    async def _open(self) -> _Link:
        tls = self._url.scheme == "amqps"
        url = await checked_url(self._url, self._guard, 5671 if tls else 5672, tls)
        connection = await aio_pika.connect(
            url, timeout=self._timeout, client_properties={"connection_name": "zapgate sink"}
        )
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.declare_exchange(
                self._exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
        except BaseException:
            await connection.close()
            raise
        return _Link(connection, channel, exchange)

    async def _send(
        self, link: _Link, target: str, body: bytes, message_id: str, headers: dict[str, str]
    ) -> None:
        message = aio_pika.Message(
            body,
            headers=dict(headers),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
        )
        await link.exchange.publish(message, routing_key=target, mandatory=self._mandatory)

    def _alive(self, link: _Link) -> bool:
        return not (link.connection.is_closed or link.channel.is_closed)

    async def _close(self, link: _Link) -> None:
        await link.connection.close()

    def _map(self, error: Exception, connecting: bool) -> BrokerError | None:
        text = _reply_text(error)
        if isinstance(error, amqp.ProbableAuthenticationError | amqp.AuthenticationError):
            return BrokerError(REFUSED_CREDENTIALS, refused=True)
        if isinstance(error, amqp.ConnectionNotAllowed | amqp.ChannelAccessRefused):
            return BrokerError(f"the broker refused access: {text}", refused=True)
        if isinstance(error, amqp.ChannelPreconditionFailed):
            return BrokerError(
                f"the exchange {self._exchange!r} exists with other settings"
                f" (it must be a durable topic exchange): {text}"
            )
        if isinstance(error, amqp.ChannelNotFoundEntity):
            return BrokerError(f"not found on the broker: {text}")
        if isinstance(error, amqp.PublishError):
            return BrokerError(
                f"no queue is bound to take the routing key on exchange {self._exchange!r}"
                f" (the broker returned it: {_returned(error)}): bind a queue, or set mandatory"
                " to false to let RabbitMQ drop such events",
                returned=True,
            )
        if isinstance(error, amqp.DeliveryError):
            return BrokerError("the broker did not confirm the message (nack)")
        if isinstance(error, amqp.ConnectionClosed | amqp.ChannelClosed):
            return BrokerError(f"the broker closed the connection: {text}")
        if isinstance(error, aio_pika.exceptions.ChannelInvalidStateError):
            return BrokerError("the connection failed: the channel was closed")
        return None


def _returned(error: amqp.PublishError) -> str:
    """The broker's reason for returning a message (NO_ROUTE), or ''."""
    delivery = error.message.delivery if error.message is not None else None
    return str(getattr(delivery, "reply_text", "") or "")[:100]


def _reply_text(error: Exception) -> str:
    """The broker's reply text an aiormq error carries (never the URL), or ''."""
    texts = [arg for arg in error.args if isinstance(arg, str)]
    return texts[-1][:300] if texts else ""
