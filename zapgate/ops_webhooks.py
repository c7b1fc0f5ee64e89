"""Operator commands on the webhooks of a *running* server, through its REST API (so its
dispatcher acts at once): ``zapgate webhooks retry`` and ``zapgate webhooks list``.

They need an admin key of the tenant (``--key`` or ``ZAPGATE_API_KEY``). The key travels in the
Authorization header only: never in a URL, never printed. A refusal prints the server's message
and exits 1, without a traceback.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from zapgate.config import Settings

API = "/api/v1/webhooks"
ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
PAGE = 200
"""Deliveries asked for per page (the API's most)."""
COUNTED_MAX = 1000
"""``webhooks list`` counts pending and failed deliveries up to this many, then shows ``1000+``."""
TIMEOUT_SECONDS = 15.0
RATE_LIMITED_TRIES = 5
RETRY_AFTER_MAX_SECONDS = 10.0

Url = Annotated[
    str | None,
    typer.Option(help="the server (default: http://127.0.0.1:$ZAPGATE_PORT)", show_default=False),
]
Key = Annotated[
    str | None,
    typer.Option(
        envvar="ZAPGATE_API_KEY",
        help="an admin API key (default: $ZAPGATE_API_KEY)",
        show_default=False,
        show_envvar=False,
    ),
]


class Refused(Exception):
    """The server answered an error: its status code and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status


class Api:
    """The few REST calls the commands make, with the key in the Authorization header."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def call(self, method: str, path: str, **params: Any) -> Any:
        """The answer's JSON; Refused for an error (a 429 is waited out a few times first)."""
        for tries_left in reversed(range(RATE_LIMITED_TRIES)):
            answer = self._client.request(method, path, params=params or None)
            if answer.status_code != 429 or not tries_left:
                break
            time.sleep(_retry_after(answer))
        if answer.is_error:
            raise Refused(answer.status_code, _message(answer))
        return answer.json()

    def deliveries(self, webhook_id: str, status: str, most: int | None = None) -> Iterator[Any]:
        """A subscription's deliveries with ``status``, newest first (``most`` at most)."""
        path, cursor, seen = f"{API}/{webhook_id}/deliveries", None, 0
        while True:
            query = {"status": status, "limit": PAGE, **({"cursor": cursor} if cursor else {})}
            page = self.call("GET", path, **query)
            for delivery in page["data"]:
                yield delivery
                seen += 1
                if most is not None and seen >= most:
                    return
            cursor = page["next_cursor"]
            if not cursor:
                return


@dataclass(frozen=True, slots=True)
class Retried:
    """One delivery asked to be retried: the delivery as the server answered, or why not."""

    delivery_id: str
    delivery: dict[str, Any] | None
    error: str | None = None


def register(app: typer.Typer, settings: Callable[[], Settings]) -> None:
    """Add ``webhooks retry`` and ``webhooks list`` to ``app``; ``settings`` gives the defaults
    of ``--url`` and ``--key`` (exiting on an invalid configuration)."""
    webhooks_app = typer.Typer(help="Webhooks of a running server.", no_args_is_help=True)
    app.add_typer(webhooks_app, name="webhooks")

    @webhooks_app.command("retry")
    def retry(
        webhook_id: Annotated[str, typer.Argument(help="the subscription (wh_...)")],
        delivery_ids: Annotated[
            list[str] | None,
            typer.Argument(help="deliveries to send again (dlv_...)", show_default=False),
        ] = None,
        failed: Annotated[bool, typer.Option("--failed", help="every failed delivery")] = False,
        url: Url = None,
        key: Key = None,
    ) -> None:
        """Send deliveries again now, through the running server (their attempts start over)."""
        if not delivery_ids and not failed:
            typer.secho("name the deliveries to retry, or give --failed", err=True)
            raise typer.Exit(2)
        _checked([webhook_id, *(delivery_ids or [])])
        with _api(url, key, settings) as api:
            wanted = list(delivery_ids or [])
            if failed:
                wanted += [found["id"] for found in api.deliveries(webhook_id, "failed")]
            wanted = list(dict.fromkeys(wanted))
            if not wanted:
                typer.echo(f"{webhook_id} has no failed deliveries")
                return
            results = [_retry(api, webhook_id, delivery_id) for delivery_id in wanted]
        _console().print(_retried_table(webhook_id, results))
        refused = [result for result in results if result.error is not None]
        if refused:
            typer.secho(f"{len(refused)} of {len(results)} not retried", fg="red", err=True)
            raise typer.Exit(1)

    @webhooks_app.command("list")
    def list_webhooks(url: Url = None, key: Key = None) -> None:
        """Subscriptions with their pending and failed deliveries."""
        with _api(url, key, settings) as api:
            rows = [
                (hook, _count(api, hook["id"], "pending"), _count(api, hook["id"], "failed"))
                for hook in api.call("GET", API)
            ]
        table = Table(title=f"Webhooks ({len(rows)})")
        for column in ("id", "url", "state", "failures in a row", "pending", "failed"):
            numeric = column in ("failures in a row", "pending", "failed")
            table.add_column(column, justify="right" if numeric else "left")
        for hook, pending, failed in rows:
            reason = escape(hook["disabled_reason"] or "")
            state = "[green]active[/]" if hook["active"] else f"[red]disabled[/] {reason}"
            failing = str(hook["consecutive_failures"])
            table.add_row(hook["id"], escape(hook["url"]), state, failing, pending, failed)
        _console().print(table)


def _retry(api: Api, webhook_id: str, delivery_id: str) -> Retried:
    path = f"{API}/{webhook_id}/deliveries/{delivery_id}/retry"
    try:
        return Retried(delivery_id, api.call("POST", path))
    except Refused as refused:
        if refused.status in (401, 403):
            raise  # the key is wrong for every delivery: stop at the first
        return Retried(delivery_id, None, str(refused))


def _retried_table(webhook_id: str, results: list[Retried]) -> Table:
    done = sum(1 for result in results if result.error is None)
    table = Table(title=f"Deliveries of {webhook_id} retried ({done} of {len(results)})")
    for column in ("delivery", "event", "session", "last answer", "result"):
        table.add_column(column, justify="right" if column == "event" else "left")
    for result in results:
        found = result.delivery or {}
        last = found.get("last_status_code") or found.get("last_error") or ""
        outcome = (
            f"[green]retrying[/] ({found.get('status')})"
            if result.error is None
            else f"[red]{escape(result.error)}[/]"
        )
        seq = found.get("event_seq")
        table.add_row(
            escape(result.delivery_id),
            "" if seq is None else str(seq),
            escape(str(found.get("session") or "")),
            escape(str(last))[:80],
            outcome,
        )
    return table


def _count(api: Api, webhook_id: str, status: str) -> str:
    counted = sum(1 for _ in api.deliveries(webhook_id, status, COUNTED_MAX + 1))
    return f"{COUNTED_MAX}+" if counted > COUNTED_MAX else str(counted)


@contextmanager
def _api(url: str | None, key: str | None, settings: Callable[[], Settings]) -> Iterator[Api]:
    """A client of the server; an error answer or an unreachable server ends the command."""
    configured = settings() if url is None or key is None else None
    base = url or _local_url(configured)
    key = key or (configured.api_key if configured else None)
    if not key:
        typer.secho("no API key: give --key or set ZAPGATE_API_KEY", fg="red", err=True)
        raise typer.Exit(2)
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=TIMEOUT_SECONDS) as client:
            yield Api(client)
    except Refused as refused:
        typer.secho(f"zapgate at {base} refused: {refused}", fg="red", err=True)
        raise typer.Exit(1) from None
    except httpx.HTTPError as error:
        typer.secho(f"cannot reach zapgate at {base}: {error}", fg="red", err=True)
        raise typer.Exit(1) from None


def _local_url(settings: Settings | None) -> str:
    """The server of this machine's configuration, on the loopback when it binds every
    address."""
    assert settings is not None
    host = settings.host
    with suppress(ValueError):
        address = ipaddress.ip_address(host)
        if address.is_unspecified:
            host = "::1" if address.version == 6 else "127.0.0.1"
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def _checked(ids: list[str]) -> None:
    """Exit 2 unless every id is one (so none can leave its place in a URL path)."""
    for given in ids:
        if not ID.fullmatch(given):
            typer.secho(f"{given!r} is not an id (letters, digits, _ and -)", err=True)
            raise typer.Exit(2)


def _message(answer: httpx.Response) -> str:
    """The server's ``detail`` (or its ``error`` code), else the reason phrase."""
    try:
        body = answer.json()
    except ValueError:
        return answer.reason_phrase
    if not isinstance(body, dict):
        return answer.reason_phrase
    detail = body.get("detail") or body.get("error") or answer.reason_phrase
    return detail if isinstance(detail, str) else str(detail)[:300]


def _retry_after(answer: httpx.Response) -> float:
    try:
        wait = float(answer.headers.get("Retry-After", "1"))
    except ValueError:
        wait = 1.0
    return min(max(wait, 0.0), RETRY_AFTER_MAX_SECONDS)


def _console() -> Console:
    """A console as wide as the terminal, or a wide one when printing to a file or a pipe."""
    console = Console()
    return console if console.is_terminal else Console(width=200, no_color=True)
