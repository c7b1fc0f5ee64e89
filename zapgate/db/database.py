"""Async engine construction, with SQLite tuned for a single writer and many readers (WAL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from zapgate.config import Settings
from zapgate.files import FILE_MODE, private_dir, private_file


def create_engine(settings: Settings) -> AsyncEngine:
    """The database engine for ``settings.database_url``."""
    if settings.is_sqlite:
        private_dir(settings.data_dir)
        database_file = _sqlite_file(settings.database_url)
        if database_file is not None:
            if not database_file.parent.exists():  # never tighten a folder zapgate did not make
                private_dir(database_file.parent)
            private_file(database_file)  # SQLite gives its -wal and -shm files the same mode
            for companion in ("-wal", "-shm", "-journal"):
                sidecar = database_file.with_name(database_file.name + companion)
                if sidecar.exists():
                    sidecar.chmod(FILE_MODE)
        engine = create_async_engine(
            settings.database_url,
            pool_size=8,
            max_overflow=8,
            hide_parameters=True,
            json_serializer=json_text,
        )
        _tune_sqlite(engine, settings.sqlite_synchronous)
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=10,
        max_overflow=10,
        hide_parameters=True,
        json_serializer=json_text,
        connect_args={"server_settings": _postgres_settings(settings)},
    )


def _postgres_settings(settings: Settings) -> dict[str, str]:
    """Session settings of every connection. In cluster mode a transaction left open by a node
    that froze (SIGSTOP, a VM paused, a GC stall) would hold its tenant's row lock, and so every
    other node's writes of that tenant, until it woke: PostgreSQL ends such a transaction after
    the lease TTL (it is rolled back; the frozen node's writes are retried or refused when it
    wakes), the time another node takes to take its sessions over. No live node leaves a
    transaction idle that long."""
    if not settings.clustered:
        return {}
    seconds = max(1.0, settings.lease_ttl_seconds)
    return {"idle_in_transaction_session_timeout": str(int(seconds * 1000))}


def json_text(value: Any) -> str:
    """JSON columns' text, by orjson (an event payload per message: the stdlib encoder was 4% of
    a send's CPU); what orjson refuses (an integer beyond 64 bits) the stdlib writes."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for an in-memory database)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _tune_sqlite(engine: AsyncEngine, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # db/checkpoint.py does it, off the writer
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
