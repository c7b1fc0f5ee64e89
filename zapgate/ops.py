"""Operator commands on the database a server uses (it may be running): ``zapgate status``,
``zapgate sessions qr NAME`` and ``zapgate events tail``. Read-only: they change nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from zapgate.clock import now_ms, to_iso
from zapgate.engines.base import SessionStatus
from zapgate.events import repository as event_store
from zapgate.events.model import Event, EventType
from zapgate.services import DEFAULT_TENANT, Services
from zapgate.sessions import qr as qr_render
from zapgate.sessions import repository as session_store
from zapgate.webhooks import repository as webhook_store

T = TypeVar("T")
Run = Callable[[Callable[[Services], Awaitable[T]]], T]
SHOWN_MAX = 1000
"""Sessions and subscriptions listed at most."""
POLL_SECONDS = 0.5
COLOURS = {
    SessionStatus.WORKING: "green",
    SessionStatus.STARTING: "yellow",
    SessionStatus.SCAN_QR_CODE: "yellow",
    SessionStatus.DISCONNECTED: "red",
    SessionStatus.FAILED: "bold red",
    SessionStatus.STOPPED: "dim",
}


def register(app: typer.Typer, run: Run[Any]) -> None:
    """Add the operator commands to ``app``; ``run`` runs work against the database."""
    sessions_app = typer.Typer(help="Sessions.", no_args_is_help=True)
    events_app = typer.Typer(help="The event log.", no_args_is_help=True)
    app.add_typer(sessions_app, name="sessions")
    app.add_typer(events_app, name="events")

    @app.command("status")
    def status() -> None:
        """Sessions (status, account, outbox) and webhooks (pending, failed) of every tenant."""

        async def work(services: Services) -> tuple[Table, Table]:
            return await _status_tables(services)

        sessions, webhooks = run(work)
        console = _console()
        console.print(sessions)
        console.print(webhooks)

    @sessions_app.command("qr")
    def session_qr(
        name: Annotated[str, typer.Argument(help="the session")],
        tenant: Annotated[str, typer.Option(help="whose session")] = DEFAULT_TENANT,
    ) -> None:
        """Draw the QR a session shows now, to scan with WhatsApp > Linked devices."""

        async def work(services: Services) -> tuple[SessionStatus, Event | None]:
            session = await services.sessions.get(tenant, name)
            shown = await event_store.latest_of_type(
                services.database, tenant, name, EventType.SESSION_QR
            )
            return session.status, shown

        current, shown = run(work)
        if current is not SessionStatus.SCAN_QR_CODE or shown is None:
            typer.secho(f"session {name!r} is {current.value}: no QR to scan", err=True)
            raise typer.Exit(1)
        age = max(0, now_ms() - shown.created_at) // 1000
        typer.echo(qr_render.terminal(str(shown.payload["qr"])))
        typer.echo(f"shown {age} s ago; a new one comes every few seconds until it is scanned")

    @events_app.command("tail")
    def events_tail(
        tenant: Annotated[str, typer.Option(help="whose events")] = DEFAULT_TENANT,
        session: Annotated[str | None, typer.Option(help="only this session's")] = None,
        last: Annotated[int, typer.Option(min=0, help="events from before to show first")] = 10,
        follow: Annotated[bool, typer.Option(help="wait for new events (Ctrl-C ends)")] = True,
        count: Annotated[int | None, typer.Option(min=1, help="stop after this many")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON envelope a line")] = False,
    ) -> None:
        """Print the event log as it grows: seq, time, session, type and a summary."""

        async def work(services: Services) -> None:
            after = max(0, await event_store.last_seq(services.database, tenant) - last)
            shown = 0
            while True:
                page = await event_store.read_after(services.database, tenant, after, 100, session)
                for event in page:
                    typer.echo(json.dumps(event.envelope()) if as_json else _line(event))
                    shown += 1
                    if count is not None and shown >= count:
                        return
                after = page[-1].seq if page else after
                if not page and not follow:
                    return
                if not page:
                    await asyncio.sleep(POLL_SECONDS)

        try:
            run(work)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None


async def _status_tables(services: Services) -> tuple[Table, Table]:
    database = services.database
    listed = await session_store.all_tenants_list(database, SHOWN_MAX)
    outboxes = {
        (tenant, name): (depth, oldest)
        for tenant, name, depth, oldest in await session_store.all_tenants_outboxes(database)
    }
    now = now_ms()
    sessions = Table(title=f"Sessions ({len(listed)})")
    for column in ("tenant", "session", "engine", "status", "account", "queued", "oldest"):
        sessions.add_column(column, justify="right" if column in ("queued", "oldest") else "left")
    sessions.add_column("reason", overflow="fold")
    for found in listed:
        depth, oldest = outboxes.get((found.tenant, found.name), (0, None))
        colour = COLOURS.get(found.status, "")
        sessions.add_row(
            found.tenant,
            found.name,
            found.engine,
            f"[{colour}]{found.status.value}[/]" if colour else found.status.value,
            str((found.me or {}).get("id") or ""),
            str(depth),
            f"{(now - oldest) // 1000} s" if oldest else "",
            (found.status_reason or "")[:120],
        )
    summary = await webhook_store.all_tenants_summary(database, SHOWN_MAX)
    webhooks = Table(title=f"Webhooks ({len(summary)})")
    for column in ("tenant", "id", "url", "state", "pending", "failed"):
        webhooks.add_column(column, justify="right" if column in ("pending", "failed") else "left")
    for hook, pending, failed in summary:
        state = "[green]active[/]" if hook.active else f"[red]disabled[/] {hook.disabled_reason}"
        webhooks.add_row(hook.tenant, hook.id, hook.url, state, str(pending), str(failed))
    return sessions, webhooks


def _line(event: Event) -> str:
    """One event, for people: seq, time, session, type and what it says."""
    payload = event.payload
    said = payload.get("status") or payload.get("text") or payload.get("reason") or ""
    if event.type == EventType.SESSION_QR:
        said = "(a QR to scan)"
    stamp = to_iso(event.created_at)
    return f"{event.seq:>8}  {stamp}  {event.session or '-':<16} {event.type:<20} {said}"[:200]


def _console() -> Console:
    """A console as wide as the terminal, or a wide one when printing to a file or a pipe."""
    console = Console()
    return console if console.is_terminal else Console(width=200, no_color=True)
