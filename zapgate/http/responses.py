"""A JSON response rendered with orjson (fast, and handles the wire dicts we build)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class Json(JSONResponse):
    """``application/json`` via orjson.

    A ``JSONResponse`` subclass, so FastAPI publishes each route's ``response_model`` as the
    schema of its success body (for any other response class it writes ``{"type": "string"}``).
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
