"""Apply Alembic migrations programmatically (at start and by ``zapgate migrate``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _upgrade(connection: Connection) -> None:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


BOOT_LOCK = 0x7A617067  # "zapg": the advisory lock nodes take in turns to prepare the database


@asynccontextmanager
async def boot_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold PostgreSQL's advisory lock ``BOOT_LOCK`` meanwhile: nodes starting together migrate
    and create the defaults (tenant, session, operator key) one at a time, not in a race (the
    lock dies with its connection, so a node killed meanwhile does not hold it). SQLite serves
    one process: nothing to take."""
    if engine.dialect.name != "postgresql":
        yield
        return
    async with engine.connect() as connection:
        # outside a transaction: a session's lock needs none, and one left idle for the whole
        # boot would be ended by idle_in_transaction_session_timeout (cluster mode), freeing it
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": BOOT_LOCK})
        try:
            yield
        finally:
            await connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": BOOT_LOCK})
