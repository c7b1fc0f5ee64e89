"""Quotas and rate limits: per tenant and per key, defaults from settings, overrides per tenant."""
