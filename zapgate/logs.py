"""Structured logs: one JSON object per line on stderr."""

from __future__ import annotations

import logging
import sys

import orjson

from zapgate.clock import now_ms, to_iso


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": to_iso(now_ms()),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(level: str) -> None:
    """Send every log record to stderr as JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
