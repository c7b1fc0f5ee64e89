"""Authentication: API keys, tenants."""
