"""Idempotency-Key: a request sent again gets the stored answer, not a second effect."""
