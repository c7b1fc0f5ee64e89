"""SQL for messages; every query is scoped by tenant."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapgate.chats import repository as chats_repository
from zapgate.db.committer import UnitOfWork
from zapgate.db.tables import messages
from zapgate.messages.model import Direction, Message, MessageStatus, statuses_before
from zapgate.messages.search import document

_READ = tuple(column for column in messages.c if column.name != "search_text")
"""The columns a ``Message`` is read from (not the folded copy of the text)."""


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Filters of a history page, newest first: by id, or with ``since``/``until`` by time.

    ``before`` is the cursor: the id of the last message of the previous page; by time, with
    ``before_ms`` its ``created_at`` as well.
    """

    tenant: str
    session: str
    limit: int
    chat_id: str | None = None
    direction: Direction | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    before: str | None = None
    before_ms: int | None = None
    search: tuple[str, ...] | None = None
    """Folded words (``zapgate.messages.search.query``) a message's text must all have (with
    none, no message matches)."""

    @property
    def by_time(self) -> bool:
        """Whether pages are ordered by ``created_at`` (a time filter is set), not by id."""
        return self.since_ms is not None or self.until_ms is not None


def insert(unit: UnitOfWork, message: Message) -> None:
    """Store a new message (of ``message.tenant``) when the write batch flushes, with the
    folded words its text is searched by."""
    unit.insert(messages, {**message.to_row(), "search_text": document(message.text)})
    chats_repository.touch(unit, message)  # its chat's newest activity, in the same write


async def history(engine: AsyncEngine, query: HistoryQuery) -> list[Message]:
    """One page of messages, newest first."""
    if query.search == ():
        return []  # a search without words finds nothing
    params: dict[str, Any] = {"t": query.tenant, "s": query.session, "n": query.limit}
    optional = {
        "chat": query.chat_id,
        "direction": query.direction.value if query.direction is not None else None,
        "since": query.since_ms,
        "until": query.until_ms,
        "before": query.before,
    }
    params.update({name: value for name, value in optional.items() if value is not None})
    if query.by_time and query.before is not None:
        if query.before_ms is None:
            raise ValueError("a page by time continues after (before_ms, before)")
        # Rows after the cursor have created_at <= before_ms: one upper bound for the seek
        # (SQLite seeks by one of two), the cursor's id breaking ties within its millisecond.
        params["before_ms"] = query.before_ms
        until = query.before_ms + 1
        params["until"] = until if query.until_ms is None else min(query.until_ms, until)
    search = engine.dialect.name if query.search else None
    if query.search:
        params["q"] = _match(query.search, engine.dialect.name)
    flags = {name: name in params for name in optional}
    statement = _history(*flags.values(), query.by_time, search)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement, params)).mappings().all()
    return [Message.from_row(row) for row in rows]


@lru_cache(maxsize=128)
def _history(
    chat: bool,
    direction: bool,
    since: bool,
    until: bool,
    before: bool,
    by_time: bool = False,
    search: str | None = None,
) -> sa.Select[Any]:
    """The page query for one combination of filters, built once (a read on every page).

    By id it seeks ``ix_messages_history`` (or ``ix_messages_chat``); by time it seeks
    ``ix_messages_time``, so a window in the middle of a long history costs no more than the
    newest page (with id order it scanned every newer message to find the window). ``search``
    is the dialect whose full-text index the words ``q`` are looked up in (``_SEARCHES``).
    """
    c = messages.c
    statement = sa.select(*_READ).where(
        c.tenant_id == sa.bindparam("t"), c.session == sa.bindparam("s")
    )
    if search is not None:
        statement = statement.where(_SEARCHES[search])
    if chat:
        statement = statement.where(c.chat_id == sa.bindparam("chat"))
    if direction:
        statement = statement.where(c.direction == sa.bindparam("direction"))
    if since:
        statement = statement.where(c.created_at >= sa.bindparam("since"))
    if until:
        statement = statement.where(c.created_at < sa.bindparam("until"))
    limit = sa.bindparam("n", type_=sa.Integer)
    if by_time:
        if before:  # (created_at, id) < cursor; ``until`` is then at most before_ms + 1
            at = sa.bindparam("before_ms", type_=sa.BigInteger)
            statement = statement.where(
                sa.or_(c.created_at < at, c.id < sa.bindparam("before", type_=sa.String))
            )
        return statement.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
    if before:
        statement = statement.where(c.id < sa.bindparam("before"))
    return statement.order_by(c.id.desc()).limit(limit)


def _match(words: tuple[str, ...], dialect: str) -> str:
    """The bound ``q`` of a search for ``words`` (letters and digits only, so no quoting is
    needed; both forms take them as plain words, all required, in any order)."""
    if dialect == "sqlite":
        return " ".join(f'"{word}"' for word in words)  # FTS5 strings: implicit AND
    return " ".join(words)  # plainto_tsquery: every lexeme, ANDed


_FTS = sa.table("messages_fts", sa.column("rowid"))
_SEARCHES: dict[str, sa.ColumnElement[bool]] = {
    # the FTS5 table of migration 0014 gives the matching rowids; the page then seeks the
    # history index as without ``q``, keeping the rows that are among them
    "sqlite": sa.literal_column("messages.rowid").in_(
        sa.select(_FTS.c.rowid).where(
            sa.literal_column("messages_fts").op("MATCH")(sa.bindparam("q"))
        )
    ),
    # the generated tsvector of migration 0014, in a GIN index
    "postgresql": sa.literal_column("messages.search_vector").op("@@")(
        sa.func.plainto_tsquery(sa.literal_column("'simple'::regconfig"), sa.bindparam("q"))
    ),
}


async def get(engine: AsyncEngine, tenant: str, message_id: str) -> Message | None:
    """One message of ``tenant``."""
    statement = sa.select(*_READ).where(messages.c.tenant_id == tenant, messages.c.id == message_id)
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).mappings().first()
    return Message.from_row(row) if row else None


async def queued(engine: AsyncEngine, tenant: str, session: str, limit: int) -> list[Message]:
    """The oldest queued outbound messages of a session, in order."""
    statement = (
        sa.select(*_READ)
        .where(
            messages.c.tenant_id == tenant,
            messages.c.session == session,
            messages.c.status == MessageStatus.QUEUED.value,
        )
        .order_by(messages.c.id)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).mappings().all()
    return [Message.from_row(row) for row in rows]


@dataclass(frozen=True, slots=True)
class Match:
    """Which message of ``tenant`` a transition is for: by ``id``, or by the engine's id."""

    tenant: str
    key: str
    params: dict[str, str]


def by_id(tenant: str, message_id: str) -> Match:
    """Match one message by id."""
    return Match(tenant, "id", {"k": message_id})


def by_engine_id(tenant: str, session: str, engine_message_id: str) -> Match:
    """Match one outbound message by the engine's id."""
    return Match(tenant, "engine", {"s": session, "k": engine_message_id})


async def transition(
    connection: AsyncConnection, match: Match, allowed_from: list[str], values: dict[str, object]
) -> Message | None:
    """Move the matched message to ``values`` if its status is in ``allowed_from``."""
    statement = _transition(match.key, tuple(allowed_from), tuple(sorted(values)))
    params = {
        "t": match.tenant,
        **match.params,
        **{f"v_{column}": value for column, value in values.items()},
    }
    row = (await connection.execute(statement, params)).mappings().first()
    return Message.from_row(row) if row else None


@lru_cache(maxsize=64)
def _transition(key: str, allowed_from: tuple[str, ...], columns: tuple[str, ...]) -> sa.Update:
    """One reusable statement per shape: built and compiled once, not per ack (hot path)."""
    where = [
        messages.c.tenant_id == sa.bindparam("t"),
        sa.or_(
            *(
                messages.c.status == sa.literal_column(f"'{MessageStatus(s).value}'")
                for s in allowed_from
            )
        ),
    ]
    if key == "id":
        where.append(messages.c.id == sa.bindparam("k"))
    else:
        where += [
            messages.c.session == sa.bindparam("s"),
            messages.c.engine_message_id == sa.bindparam("k"),
            messages.c.direction == Direction.OUT.value,
        ]
    assignments: dict[str, Any] = {column: sa.bindparam(f"v_{column}") for column in columns}
    return sa.update(messages).where(*where).values(assignments).returning(*_READ)


async def queued_by_ids(
    connection: AsyncConnection, tenant: str, message_ids: list[str]
) -> dict[str, Message]:
    """The outbound messages of ``tenant`` among ``message_ids`` that are still queued."""
    c = messages.c
    statement = sa.select(*_READ).where(
        c.tenant_id == tenant,
        c.id.in_(sorted(set(message_ids))),
        c.status == MessageStatus.QUEUED.value,
    )
    rows = (await connection.execute(statement)).mappings().all()
    return {row["id"]: Message.from_row(row) for row in rows}


async def mark_sent(connection: AsyncConnection, tenant: str, sent: list[Message]) -> None:
    """Store the ``sent`` state of ``tenant``'s messages read queued in this transaction (one
    executemany)."""
    if not sent:
        return
    params = [
        {
            "t": tenant,
            "k": m.id,
            "v_status": m.status.value,
            "v_engine_message_id": m.engine_message_id,
            "v_error": None,
            "v_attempts": m.attempts,
            "v_updated_at": m.updated_at,
        }
        for m in sent
    ]
    await connection.execute(_MARK_SENT, params)


_MARK_SENT = (
    sa.update(messages)
    .where(
        messages.c.tenant_id == sa.bindparam("t"),
        messages.c.id == sa.bindparam("k"),
        messages.c.status == MessageStatus.QUEUED.value,
    )
    .values(
        {
            column: sa.bindparam(f"v_{column}")
            for column in ("attempts", "engine_message_id", "error", "status", "updated_at")
        }
    )
)


async def advance_by_engine_ids(
    connection: AsyncConnection,
    tenant: str,
    session: str,
    engine_message_ids: list[str],
    target: MessageStatus,
    updated_at: int,
) -> dict[str, Message]:
    """Move the outbound messages with these engine ids to ``target`` where that is forward;
    returns the moved ones by engine id (one statement for all)."""
    statement = _advance_by_engine_ids(target)
    params = {"t": tenant, "s": session, "ids": engine_message_ids, "now": updated_at}
    rows = (await connection.execute(statement, params)).mappings().all()
    return {row["engine_message_id"]: Message.from_row(row) for row in rows}


@lru_cache(maxsize=8)
def _advance_by_engine_ids(target: MessageStatus) -> sa.Update:
    c = messages.c
    return (
        sa.update(messages)
        .where(
            c.tenant_id == sa.bindparam("t"),
            c.session == sa.bindparam("s"),
            c.direction == Direction.OUT.value,
            c.engine_message_id.in_(sa.bindparam("ids", expanding=True)),
            c.status.in_(statuses_before(target)),
        )
        .values(status=target.value, updated_at=sa.bindparam("now"))
        .returning(*_READ)
    )


async def stored_engine_ids(
    connection: AsyncConnection, tenant: str, session: str, engine_message_ids: set[str]
) -> set[str]:
    """Which of these engine ids an outbound message of the session carries."""
    c = messages.c
    statement = sa.select(c.engine_message_id).where(
        c.tenant_id == tenant,
        c.session == session,
        c.direction == Direction.OUT.value,
        c.engine_message_id.in_(sorted(engine_message_ids)),
    )
    return {row[0] for row in await connection.execute(statement)}


async def count_queued(connection: AsyncConnection, tenant: str, session: str) -> int:
    """How many outbound messages of a session wait in the outbox."""
    statement = sa.select(sa.func.count()).where(
        messages.c.tenant_id == tenant,
        messages.c.session == session,
        messages.c.status == MessageStatus.QUEUED.value,
    )
    return int(await connection.scalar(statement) or 0)


async def ids_by_engine_ids(
    connection: AsyncConnection, tenant: str, session: str, engine_ids: list[str]
) -> dict[str, str]:
    """The message ids of a session's messages known by ``engine_ids`` to the engine."""
    c = messages.c
    statement = sa.select(c.engine_message_id, c.id).where(
        c.tenant_id == tenant, c.session == session, c.engine_message_id.in_(engine_ids)
    )
    rows = (await connection.execute(statement)).all()
    return {engine_id: message_id for engine_id, message_id in rows}


async def received(
    connection: AsyncConnection, tenant: str, session: str, engine_message_id: str
) -> Message | None:
    """The inbound message of a session the engine knows as ``engine_message_id``, if stored."""
    c = messages.c
    statement = sa.select(*_READ).where(
        c.tenant_id == tenant,
        c.session == session,
        c.engine_message_id == engine_message_id,
        c.direction == Direction.IN.value,
    )
    row = (await connection.execute(statement)).mappings().first()
    return Message.from_row(row) if row else None


async def revise(
    connection: AsyncConnection, match: Match, allowed_from: list[str], values: dict[str, object]
) -> Message | None:
    """``transition`` that may change the text: the words it is searched by follow it."""
    if "text" in values:
        text = values["text"]
        values = {**values, "search_text": document(text if isinstance(text, str) else None)}
    return await transition(connection, match, allowed_from, values)


async def load(connection: AsyncConnection, tenant: str, message_id: str) -> Message | None:
    """One message of ``tenant``, read in the caller's transaction."""
    c = messages.c
    statement = sa.select(*_READ).where(c.tenant_id == tenant, c.id == message_id)
    row = (await connection.execute(statement)).mappings().first()
    return Message.from_row(row) if row else None


async def load_by_engine_id(
    connection: AsyncConnection, tenant: str, session: str, engine_message_id: str
) -> Message | None:
    """The message of a session the engine knows as ``engine_message_id`` (either direction)."""
    c = messages.c
    statement = (
        sa.select(*_READ)
        .where(
            c.tenant_id == tenant,
            c.session == session,
            c.engine_message_id == engine_message_id,
        )
        .limit(1)
    )
    row = (await connection.execute(statement)).mappings().first()
    return Message.from_row(row) if row else None
