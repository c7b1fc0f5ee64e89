"""The command line: serve, migrate, keys. Thin: it parses, then calls the service layer."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import fields
from typing import Annotated, TypeVar

import typer
import uvicorn
from pydantic import ValidationError

from zapgate import ops, ops_webhooks
from zapgate.audit.model import CLI_ACTOR
from zapgate.config import Settings
from zapgate.events.model import Event, EventType
from zapgate.logs import configure_logging
from zapgate.names import TENANT_ID
from zapgate.services import DEFAULT_TENANT, Services
from zapgate.sessions import qr as qr_render
from zapgate.tenants.model import Tenant

T = TypeVar("T")

GRACEFUL_SHUTDOWN_SECONDS = 10
app = typer.Typer(help="zapgate: a self-hosted WhatsApp gateway.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
Count = Annotated[int | None, typer.Option(min=0, help="0 = unlimited")]


def _settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as error:
        typer.secho(f"invalid configuration:\n{describe(error)}", fg="red", err=True)
        raise typer.Exit(2) from None


def describe(error: ValidationError) -> str:
    """Each problem with its setting, never the value given (it may be a key)."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        setting = "ZAPGATE_" + "_".join(str(part) for part in problem["loc"]).upper()
        where = setting if problem["loc"] else "settings"
        lines.append(f"  {where}: {problem['msg']}")
    return "\n".join(lines)


def _announce(services: Services) -> None:
    settings = services.settings
    typer.echo(f"zapgate is serving on {settings.base_url}")
    typer.echo(f"API docs: {settings.base_url}/docs")
    if settings.terminal_qr:
        services.bus.subscribe(_print_qr_codes)
    if services.generated_key:
        typer.secho(
            "\nAn admin API key was generated. It is shown only this once; store it now:\n"
            f"\n    {services.generated_key}\n",
            fg="yellow",
        )
    sys.stdout.flush()


def _print_qr_codes(events: list[Event]) -> None:
    """QR codes of the operator's own (default) tenant: other tenants' are theirs alone."""
    for event in events:
        if event.type == EventType.SESSION_QR and event.tenant == DEFAULT_TENANT:
            typer.echo(
                f"\nSession {event.session!r} is waiting for a scan (WhatsApp > Linked devices):\n"
                + qr_render.terminal(event.payload["qr"])
            )
    sys.stdout.flush()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (ZAPGATE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (ZAPGATE_PORT)")] = None,
) -> None:
    """Run the service."""
    from zapgate.app import create_asgi
    from zapgate.http.hotpath import HotPath, protocol
    from zapgate.realtime.direct import UVICORN_OPTIONS
    from zapgate.services import build_services

    settings = _settings(host=host, port=port)
    os.umask(0o077)  # whatever zapgate, Chromium or the bridge create is private to this user
    configure_logging(settings.log_level)
    services = build_services(settings)
    hot = HotPath(services)
    if settings.trusted_proxies:
        hot.trust_proxies(settings.trusted_proxies)
    uvicorn.run(
        create_asgi(services, announce=_announce),
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=bool(settings.trusted_proxies),  # client addresses from trusted proxies
        forwarded_allow_ips=settings.trusted_proxies or None,
        server_header=False,
        http=protocol(hot),
        **UVICORN_OPTIONS,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


@app.command("migrate")
def migrate_command() -> None:
    """Apply database migrations and exit."""
    from zapgate.db.database import create_engine
    from zapgate.db.migrate import migrate

    settings = _settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    typer.echo("database is up to date")


def _with_services(work: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``work`` against the database of the settings (migrated, with its writer running);
    a refusal is printed and exits 1."""
    from zapgate.errors import AppError
    from zapgate.services import build_services

    settings = _settings()

    async def run() -> T:
        from zapgate.db.migrate import migrate

        services = build_services(settings)
        await migrate(services.database)
        services.committer.start()
        try:
            await services.sessions.ensure_default(
                DEFAULT_TENANT, settings.default_session, settings.default_engine
            )
            return await work(services)
        finally:
            await services.committer.stop()
            await services.database.dispose()

    try:
        return asyncio.run(run())
    except AppError as error:
        typer.secho(str(error.detail), fg="red", err=True)
        raise typer.Exit(1) from None


def _tenant_id(tenant: str) -> str:
    if not re.match(TENANT_ID, tenant):
        typer.secho(f"invalid tenant id {tenant!r}: letters, digits, _ and - only", err=True)
        raise typer.Exit(2)
    return tenant


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="what the key is for")] = "cli",
    tenant: Annotated[
        str, typer.Option(help="tenant the key belongs to (made with `zapgate tenants create`)")
    ] = DEFAULT_TENANT,
    scopes: Annotated[
        str,
        typer.Option(help="comma-separated: admin, send, read, metrics, operator (see the README)"),
    ] = "admin",
) -> None:
    """Create an API key and print it (shown only once)."""
    from zapgate.auth.scopes import Scope
    from zapgate.auth.service import KeyRequest

    _tenant_id(tenant)
    wanted = {name.strip() for name in scopes.split(",") if name.strip()}
    known = {scope.value for scope in Scope}
    if not wanted or not wanted <= known:
        typer.secho(f"--scopes: one or more of {', '.join(sorted(known))}", err=True)
        raise typer.Exit(2)

    async def work(services: Services) -> str:
        plaintext, record = await services.auth.issue_key(
            tenant, KeyRequest(name, frozenset(wanted))
        )
        target = f"keys/{record['id']}"
        await services.audit.record(tenant, CLI_ACTOR, "zapgate keys create", target)
        return plaintext

    typer.echo(_with_services(work))


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str, typer.Option(help="whose keys")] = DEFAULT_TENANT,
) -> None:
    """List a tenant's keys (never their secrets)."""

    async def work(services: Services) -> list[dict[str, object]]:
        await services.tenants.get(_tenant_id(tenant))
        return await services.auth.list_keys(tenant)

    for key in _with_services(work):
        state = "revoked" if key["revoked_at"] else "live"
        typer.echo(f"{key['id']}  {state:7}  {key['scopes']:16}  {key['name']}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (key_...)")],
    tenant: Annotated[str, typer.Option(help="whose key")] = DEFAULT_TENANT,
) -> None:
    """Revoke a key: refused at once, by a running server too."""

    async def work(services: Services) -> None:
        await services.auth.revoke_key(_tenant_id(tenant), key_id)
        await services.audit.record(tenant, CLI_ACTOR, "zapgate keys revoke", f"keys/{key_id}")

    _with_services(work)
    typer.echo(f"revoked {key_id}")


async def _record(services: Services, command: str, tenant: str, into: str | None = None) -> None:
    """Audit ``zapgate tenants <command>`` in ``tenant``'s log and the operator's."""
    action, target = f"zapgate tenants {command}", f"tenants/{tenant}"
    for log in sorted({into or tenant, DEFAULT_TENANT}):
        await services.audit.record(log, CLI_ACTOR, action, target)


def _show(described: dict[str, object]) -> None:
    tenant = described["tenant"]
    assert isinstance(tenant, Tenant)
    typer.echo(
        f"{tenant.id}  {tenant.status.value}  sessions: {described['sessions']}  "
        f"name: {tenant.name}"
    )


@tenants_app.command("create")
def tenants_create(
    tenant: Annotated[str, typer.Argument(help="the new tenant's id")],
    name: Annotated[str | None, typer.Option(help="a display name (default: the id)")] = None,
) -> None:
    """Create a tenant (then give it a key with `zapgate keys create --tenant`)."""
    _tenant_id(tenant)

    async def work(services: Services) -> dict[str, object]:
        created = await services.tenants.create(tenant, name)
        await _record(services, "create", tenant)
        return await services.tenants.describe(created)

    _show(_with_services(work))


@tenants_app.command("list")
def tenants_list() -> None:
    """List every tenant."""

    async def work(services: Services) -> list[dict[str, object]]:
        shown, after = [], None
        while page := await services.tenants.page(after, 200):
            shown += [await services.tenants.describe(tenant) for tenant in page]
            after = page[-1].id
        return shown

    for described in _with_services(work):
        _show(described)


@tenants_app.command("show")
def tenants_show(tenant: Annotated[str, typer.Argument(help="the tenant id")]) -> None:
    """Show a tenant, its status and its limits."""

    async def work(services: Services) -> dict[str, object]:
        return await services.tenants.describe(await services.tenants.get(_tenant_id(tenant)))

    described = _with_services(work)
    _show(described)
    limits = described["limits"]
    overrides = described["overrides"]
    assert isinstance(overrides, dict)
    for field in fields(limits):  # type: ignore[arg-type]
        own = "  (its own)" if field.name in overrides else ""
        typer.echo(f"  {field.name}: {getattr(limits, field.name)}{own}")


@tenants_app.command("suspend")
def tenants_suspend(tenant: Annotated[str, typer.Argument(help="the tenant id")]) -> None:
    """Suspend a tenant: its keys are refused and its sessions stop, in running servers too."""
    _change_status(tenant, "suspend")


@tenants_app.command("resume")
def tenants_resume(tenant: Annotated[str, typer.Argument(help="the tenant id")]) -> None:
    """Resume a suspended tenant."""
    _change_status(tenant, "resume")


def _change_status(tenant: str, command: str) -> None:
    async def work(services: Services) -> dict[str, object]:
        service = services.tenants
        change = service.suspend if command == "suspend" else service.resume
        changed = await change(_tenant_id(tenant))
        await _record(services, command, tenant)
        return await service.describe(changed)

    _show(_with_services(work))


@tenants_app.command("delete")
def tenants_delete(
    tenant: Annotated[str, typer.Argument(help="the tenant id")],
    confirm: Annotated[
        str, typer.Option(help="the tenant id again: its data cannot be recovered")
    ] = "",
) -> None:
    """Delete a tenant with all its data (sessions, messages, events, webhooks, keys)."""
    if confirm != _tenant_id(tenant):
        typer.secho("--confirm must repeat the tenant id: its data cannot be recovered", err=True)
        raise typer.Exit(2)

    async def work(services: Services) -> bool:
        await services.tenants.delete(tenant)
        await _record(services, "delete", tenant, into=DEFAULT_TENANT)  # its own log goes too
        return await services.tenants.wait_deleted(tenant)

    if not _with_services(work):
        typer.secho(f"{tenant} is being deleted; the server finishes it", err=True)
        raise typer.Exit(1)
    typer.echo(f"deleted {tenant}")


@tenants_app.command("limits")
def tenants_limits(
    tenant: Annotated[str, typer.Argument(help="the tenant id")],
    sessions: Count = None,
    webhooks: Count = None,
    sinks: Count = None,
    queued_per_session: Count = None,
    streams_per_key: Count = None,
    rate_per_key: Annotated[
        float | None, typer.Option(min=0, help="requests per second per key; 0 = unlimited")
    ] = None,
    burst: Count = None,
    concurrent_per_key: Count = None,
    reset: Annotated[bool, typer.Option(help="back to the ZAPGATE_* defaults")] = False,
) -> None:
    """Show a tenant's limits, or set its own (they replace the ZAPGATE_* defaults)."""
    given = {
        "sessions": sessions,
        "webhooks": webhooks,
        "sinks": sinks,
        "queued_per_session": queued_per_session,
        "streams_per_key": streams_per_key,
        "rate_per_key": rate_per_key,
        "burst": burst,
        "concurrent_per_key": concurrent_per_key,
    }
    changes = dict.fromkeys(given) if reset else {k: v for k, v in given.items() if v is not None}

    async def work(services: Services) -> dict[str, object]:
        limits = await services.limits.set_overrides(tenant, changes)
        if changes:
            await services.audit.record(
                tenant,
                CLI_ACTOR,
                "zapgate tenants limits",
                f"tenants/{tenant}",
                detail={"limits": changes},
            )
        return {name: getattr(limits, name) for name in given}

    for name, value in _with_services(work).items():
        typer.echo(f"{name}: {value}{'  (unlimited)' if not value else ''}")


@app.command()
def doctor() -> None:
    """Show what each engine needs and whether this machine has it."""
    from zapgate.engines.wppconnect.runtime import WppRuntime

    settings = _settings()
    runtime = WppRuntime(settings.wppconnect_node, settings.wppconnect_chromium)
    typer.echo("simulator: ready (built in)")
    missing = runtime.missing()
    typer.echo(f"wppconnect: {'ready' if missing is None else 'NOT READY'}")
    for requirement in runtime.requirements():
        mark = "ok" if requirement.present else "MISSING"
        hint = "" if requirement.present else f"  -> {requirement.fix}"
        typer.echo(f"  {mark:8} {requirement.name}: {requirement.detail}{hint}")
    typer.echo(f"auto: would run {'wppconnect' if missing is None else 'the simulator'}")
    typer.echo(f"default engine: {settings.default_engine}")
    if settings.default_engine == "wppconnect" and missing is not None:
        raise typer.Exit(1)


ops.register(app, _with_services)
ops_webhooks.register(app, _settings)


def main() -> None:
    """Entry point of the ``zapgate`` console script."""
    app()
