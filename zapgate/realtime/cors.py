"""CORS for the Socket.IO endpoint: never an echoed origin together with credentials for ``*``."""

from __future__ import annotations

from typing import Any


def cors_options(origins: list[str]) -> dict[str, Any]:
    """Keyword arguments for ``socketio.AsyncServer`` from ``ZAPGATE_CORS_ORIGINS``.

    - none configured: python-socketio's default, same origin only (a foreign ``Origin`` is
      refused with 400);
    - ``*`` (alone or in the list): any origin, without ``Access-Control-Allow-Credentials``
      (python-socketio echoes the origin and would otherwise allow credentials);
    - a list: those origins, with credentials.
    """
    if not origins:
        return {"cors_allowed_origins": None}
    if "*" in origins:
        return {"cors_allowed_origins": "*", "cors_credentials": False}
    return {"cors_allowed_origins": list(origins), "cors_credentials": True}
