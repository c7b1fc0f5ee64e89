"""Webhooks: signed, retried, durable deliveries of the event log."""
