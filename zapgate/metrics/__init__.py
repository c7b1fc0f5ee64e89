"""Prometheus metrics: what this node does (requests, commits, messages, deliveries) and what
the database holds (sessions by status, outbox depth)."""
