"""History search (``q=``), on a SQLite file and on PostgreSQL: every word, whole, in any order,
without case or accents; plain words whatever the input; the pages and filters of history."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import RunningServer
from tests.support.tenants import tenant_key
from tests.test_messages_api import wait_working
from tests.test_tenant_matrix import eventually
from zapgate.db.migrate import MIGRATIONS_DIR
from zapgate.db.tables import messages
from zapgate.engines.base import InboundMessage
from zapgate.http.readlane import _plain_query
from zapgate.messages import repository
from zapgate.messages.repository import HistoryQuery
from zapgate.messages.search import document, fold, query

HISTORY = "/api/v1/sessions/{session}/messages"
ANA = "5511988880001"
BRUNO = "5511988880002"


async def inbound(
    api: httpx.AsyncClient, text: str, sender: str = ANA, session: str = "default"
) -> str:
    """Deliver ``text`` from ``sender`` through the simulator; the stored message's id."""
    response = await api.post(
        f"/api/v1/sessions/{session}/simulate/inbound", json={"from": sender, "text": text}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def found(
    api: httpx.AsyncClient, q: str, session: str = "default", **params: Any
) -> list[str]:
    """The ids of the first page of a search, newest first."""
    response = await api.get(HISTORY.format(session=session), params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["data"]]


@pytest.fixture
async def ready(any_server: RunningServer) -> RunningServer:
    """``any_server`` with its default session working."""
    await wait_working(any_server)
    return any_server


async def test_every_word_whole_in_any_order_without_case_or_accents(
    ready: RunningServer, any_api: httpx.AsyncClient
) -> None:
    where = await inbound(any_api, "Não sei onde fica, SÉRGIO!")
    plain = await inbound(any_api, "nao SEI")
    bakery = await inbound(any_api, "Onde fica a padaria?")
    six = await inbound(any_api, "seis horas, Sergio")
    await inbound(any_api, "nada a ver")
    assert await found(any_api, "sei não") == [plain, where]
    assert await found(any_api, "NAO") == [plain, where]
    assert await found(any_api, "fica onde") == [bakery, where]
    assert await found(any_api, "sergio") == [six, where]
    assert await found(any_api, "sei fica") == [where]
    assert await found(any_api, "sei") == [plain, where], "whole words: not seis"
    assert await found(any_api, "padaria; onde?") == [bakery], "punctuation only separates"
    assert await found(any_api, "Sérgio   Sérgio") == [six, where], "a repeated word is one"
    assert await found(any_api, "padaria nada") == []
    empty = await any_api.get(HISTORY.format(session="default"), params={"q": "ausente"})
    assert empty.json() == {"data": [], "next_cursor": None}


async def test_query_syntax_of_either_database_is_plain_words(
    ready: RunningServer, any_api: httpx.AsyncClient
) -> None:
    either = await inbound(any_api, "foo or bar")
    foo = await inbound(any_api, "foo baz")
    food = await inbound(any_api, "food and drink near the bar")
    assert await found(any_api, "foo OR bar") == [either], "OR is a word, not an operator"
    assert await found(any_api, "-foo") == [foo, either], "a dash is no NOT"
    assert await found(any_api, "foo*") == [foo, either], "an asterisk is no prefix"
    assert await found(any_api, "NEAR(bar drink)") == [food]
    assert await found(any_api, "bar & !foo") == [either], "no tsquery operators"
    assert await found(any_api, "text:foo") == [], "no column filter: text is a word too"
    hostile = ['"foo* OR (bar', "foo AND", "'", "''foo''", "\\", "a:*", "(", "^foo", "{foo}",
               'foo"bar', "x <-> y", "!!foo", "foo:B", "'f' & 'g'", "NOT", "+", "a\tb"]  # fmt: skip
    for q in hostile:
        response = await any_api.get(HISTORY.format(session="default"), params={"q": q})
        assert response.status_code in (200, 422), (q, response.text)


@pytest.mark.parametrize(
    "q",
    ["", " ", "!!!", "_", "a b c d e f g h i j k", "a,b;c.d e-f g+h i/j:k", "x" * 201],
    ids=["empty", "space", "punctuation", "underscore", "11-words", "11-terms", "too-long"],
)
async def test_a_query_without_terms_or_with_too_many_is_refused(
    any_api: httpx.AsyncClient, q: str
) -> None:
    response = await any_api.get(HISTORY.format(session="default"), params={"q": q})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input"


async def test_terms_without_letters_or_digits_find_nothing(
    ready: RunningServer, any_api: httpx.AsyncClient
) -> None:
    thanks = await inbound(any_api, "obrigado 🙂 — até")
    assert await found(any_api, "🙂") == [], "an emoji is no word"
    assert await found(any_api, "— «»") == []
    assert await found(any_api, "🙂 obrigado") == [thanks]
    many = await inbound(any_api, " ".join(f"w{n}" for n in range(12)))
    one_term = "—".join(f"w{n}" for n in range(12))
    assert await found(any_api, one_term) == [many], "the terms are bounded, not the words"


async def test_search_pages_give_every_match_once_with_the_other_filters(
    ready: RunningServer, any_api: httpx.AsyncClient
) -> None:
    matches = []
    for n in range(7):
        await inbound(any_api, f"ruído {n}", sender=BRUNO)
        matches.append(await inbound(any_api, f"reunião às {n}", sender=ANA if n % 2 else BRUNO))
    sent = await any_api.post(
        HISTORY.format(session="default"), json={"to": ANA, "text": "Reunião?"}
    )
    assert sent.status_code == 202, sent.text
    newest_first = [sent.json()["id"], *reversed(matches)]
    for extra in ({}, {"since": "2000-01-01T00:00:00Z"}, {"until": "2999-01-01T00:00:00Z"}):
        assert await pages(any_api, "reuniao", 3, **extra) == newest_first, extra
    assert await pages(any_api, "reuniao", 2, direction="out") == newest_first[:1]
    from_ana = [m for m in newest_first[1:] if m in matches[1::2]]
    assert await pages(any_api, "REUNIÃO", 2, chat=ANA, direction="in") == from_ana
    assert await pages(any_api, "reuniao", 50, chat=ANA) == [newest_first[0], *from_ana]
    assert await pages(any_api, "reuniao 3", 2) == [matches[3]]


async def pages(api: httpx.AsyncClient, q: str, limit: int, **params: Any) -> list[str]:
    """Every id of a search, following the cursors; checks no page is longer than ``limit``."""
    seen: list[str] = []
    cursor = None
    while True:
        query_params = {"q": q, "limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = await api.get(HISTORY.format(session="default"), params=query_params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= limit
        seen += [m["id"] for m in page["data"]]
        if (cursor := page["next_cursor"]) is None:
            assert len(seen) == len(set(seen)), "a match on two pages"
            return seen


async def test_other_tenants_matches_never_show(
    ready: RunningServer, any_api: httpx.AsyncClient
) -> None:
    key = await tenant_key(ready.services, "acme")
    mine = await inbound(any_api, "segredo da empresa")
    async with httpx.AsyncClient(
        base_url=ready.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as other:
        created = await other.post("/api/v1/sessions", json={"name": "default"})
        assert created.status_code == 201, created.text

        async def working() -> bool:
            session = (await other.get("/api/v1/sessions/default")).json()
            return bool(session["status"] == "WORKING")

        await eventually(working, "acme's session never got to WORKING")
        theirs = await inbound(other, "segredo de outra empresa")
        assert await found(other, "segredo empresa") == [theirs]
    assert await found(any_api, "segredo empresa") == [mine]
    assert await found(any_api, "outra") == []


async def test_a_message_stays_found_as_its_status_changes(
    ready: RunningServer, any_api: httpx.AsyncClient
) -> None:
    sent = await any_api.post(
        HISTORY.format(session="default"), json={"to": ANA, "text": "Confirmação do pedido"}
    )
    message_id = sent.json()["id"]

    async def read() -> bool:
        message = (await any_api.get(f"/api/v1/messages/{message_id}")).json()
        return bool(message["status"] == "read")

    await eventually(read, "the message was never read")
    assert await found(any_api, "confirmacao pedido") == [message_id]
    async with ready.services.database.begin() as connection:  # an edit, as the writer does it
        await connection.execute(
            sa.update(messages)
            .where(messages.c.id == message_id)
            .values(text="Pedido cancelado", search_text=document("Pedido cancelado"))
        )
    assert await found(any_api, "cancelado") == [message_id]
    assert await found(any_api, "confirmacao") == []
    database = ready.services.database
    if database.dialect.name == "sqlite":  # the FTS5 index still agrees with its table
        async with database.begin() as connection:
            await connection.exec_driver_sql(
                "INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)"
            )


async def test_a_search_in_a_long_history_seeks_the_full_text_index(
    any_server: RunningServer,
) -> None:
    services = any_server.services
    batch = 500
    for start in range(0, 5000, batch):
        await asyncio.gather(
            *(
                services.messages.record_inbound(
                    "default",
                    "default",
                    InboundMessage(f"e-{n}", ANA, "5511000000000", "text", text(n), n),
                )
                for n in range(start, start + batch)
            )
        )
    page = await services.messages.history(
        HistoryQuery("default", "default", 50, search=query("Olá número 1234"))
    )
    assert [m.text for m in page] == [text(1234)]
    common = await services.messages.history(
        HistoryQuery("default", "default", 50, search=query("ola"))
    )
    assert len(common) == 50
    assert [m.id for m in common] == sorted((m.id for m in common), reverse=True)
    plan = await search_plan(services.database, "numero 1234")
    if services.database.dialect.name == "sqlite":
        assert "SEARCH messages USING INDEX ix_messages_history" in plan, plan
        assert "VIRTUAL TABLE INDEX" in plan, plan  # the FTS5 index, matched once
    else:
        assert "ix_messages_search" in plan, plan


def text(n: int) -> str:
    return f"Olá, número {n}"


async def search_plan(database: AsyncEngine, q: str) -> str:
    """The database's plan of a search page."""
    dialect = database.dialect
    statement = repository._history(False, False, False, False, False, False, dialect.name)
    params = {"t": "default", "s": "default", "n": 50}
    params["q"] = repository._match(query(q) or (), dialect.name)
    compiled = statement.compile(dialect=dialect)
    values = compiled.construct_params(params)
    arguments = tuple(values[name] for name in compiled.positiontup or ())
    explain = "EXPLAIN QUERY PLAN" if dialect.name == "sqlite" else "EXPLAIN"
    async with database.connect() as connection:
        if dialect.name == "postgresql":
            await connection.exec_driver_sql("ANALYZE messages")
        rows = await connection.exec_driver_sql(f"{explain} {compiled}", arguments)
        return " | ".join(str(row[-1]) for row in rows)


def test_searches_never_take_the_read_lane() -> None:
    for raw in (b"q=foo", b"q=foo&limit=5", b"limit=5&cursor=msg_1&q=foo"):
        assert _plain_query({"query_string": raw}, "cursor", 500) is None, raw


def test_text_and_queries_fold_alike() -> None:
    assert fold("Não É ÇÃO ﬁm ½") == "nao e cao fim 1⁄2"
    assert document("  Olá,   MUNDO!! ") == "ola mundo"
    assert document("🙂 !!") is None
    assert document(None) is None
    assert query("Mundo, olá mundo") == ("mundo", "ola")
    assert query("a_b") == ("a", "b"), "an underscore separates"
    assert query("🙂") == (), "a term, no word"
    assert query("৴") == (), "a sign PostgreSQL's parser would drop is no word"
    assert query("!?") is None
    assert query("...") is None


async def test_messages_stored_before_the_search_migration_are_found(
    database: AsyncEngine,
) -> None:
    await migrate(database, command.upgrade, "0013")
    async with database.begin() as connection:
        await connection.execute(
            sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('t1', 't1', 0)")
        )
        for n, words in enumerate(["Não sei", "nada", None, "Sei lá"]):
            await connection.execute(
                sa.text(
                    "INSERT INTO messages (id, tenant_id, session, direction, chat_id, sender, "
                    "recipient, kind, text, status, attempts, created_at, updated_at) VALUES "
                    "(:id, 't1', 's', 'in', 'c', 'c', 'r', 'text', :text, 'received', 0, 0, 0)"
                ),
                {"id": f"msg_{n}", "text": words},
            )
    await migrate(database, command.upgrade, "head")
    await migrate(database, command.downgrade, "0013")  # and back, as an operator would
    await migrate(database, command.upgrade, "head")
    page = await repository.history(database, HistoryQuery("t1", "s", 10, search=query("SEI")))
    assert [m.id for m in page] == ["msg_3", "msg_0"]
    if database.dialect.name == "sqlite":  # a later migration recreating messages drops them
        async with database.connect() as connection:
            triggers = await connection.scalars(
                sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            )
            assert {"messages_fts_insert", "messages_fts_delete", "messages_fts_update"} <= set(
                triggers
            ), "rebuild messages_fts after copying messages (migration 0014)"


async def migrate(
    database: AsyncEngine, direction: Callable[[Config, str], None], revision: str
) -> None:
    """Upgrade or downgrade the schema to ``revision``."""

    def run(connection: sa.Connection) -> None:
        config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        direction(config, revision)

    async with database.begin() as connection:
        await connection.run_sync(run)
