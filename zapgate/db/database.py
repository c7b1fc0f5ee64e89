"""Async engine construction, with SQLite tuned for a single writer and many readers (WAL)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from zapgate.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """The database engine for ``settings.database_url``."""
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            settings.database_url, pool_size=8, max_overflow=8, hide_parameters=True
        )
        _tune_sqlite(engine, settings.sqlite_synchronous)
        return engine
    return create_async_engine(
        settings.database_url, pool_size=10, max_overflow=10, hide_parameters=True
    )


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))


def _tune_sqlite(engine: AsyncEngine, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
