"""Event sinks: the event log published to brokers (RabbitMQ, NATS JetStream, Redis Streams)."""
