"""Tenants: the owner of every row, and the counter of its event log."""
