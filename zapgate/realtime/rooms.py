"""Room names: a tenant's room gets all its events, a session room only that session's."""


def tenant_room(tenant: str) -> str:
    """The room of every event of ``tenant``."""
    return f"t:{tenant}"


def session_room(tenant: str, session: str) -> str:
    """The room of one session's events."""
    return f"t:{tenant}:s:{session}"
