"""Messages: the outbox, inbound history and delivery status."""
