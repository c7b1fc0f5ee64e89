"""Names that end up in paths, rooms and folders: one pattern each, checked everywhere."""

SESSION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
"""Starts with a letter or digit, so never ``.``/``..`` (session names become folder names)."""

TENANT_ID = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
"""No ``:`` (room names are ``t:{tenant}:s:{session}``) and no path separators."""
