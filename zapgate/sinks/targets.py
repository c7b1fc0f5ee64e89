"""Where a sink publishes: its broker URL (checked like a webhook's) and its name templates.

A template names the routing key (RabbitMQ), subject (NATS) or stream key (Redis) of each event
from ``{tenant}``, ``{session}`` (``_`` for an event of no session) and ``{type}`` (such as
``message.received``: two tokens of a dotted name, so ``zapgate.*.*.message.*`` matches).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult

from zapgate.webhooks import ssrf

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
FIELDS = ("tenant", "session", "type")
NO_SESSION = "_"
SCHEMES: dict[str, dict[str, int]] = {
    "rabbitmq": {"amqp": 5672, "amqps": 5671},
    "nats": {"nats": 4222, "tls": 4222},
    "redis": {"redis": 6379, "rediss": 6379},
}
"""The URL schemes of each sink type, with their default ports."""
NATS_LITERAL = re.compile(r"^[A-Za-z0-9_\-.]*$")
STREAM_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class BadTarget(ValueError):
    """A sink's URL or template is refused; the message says why."""


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """A broker URL that passed the checks."""

    url: str
    scheme: str
    host: str
    port: int
    public: str
    """The URL without credentials or query (what the API shows)."""


def check_url(kind: str, url: str, allowlist: ssrf.Allowlist) -> BrokerUrl:
    """Check a broker URL: its scheme for ``kind`` (else BadTarget) and its host (the SSRF
    rules with the sinks' allowlist, else ``ssrf.UnsafeUrl``); a host name's addresses are
    checked again at each connection."""
    parts = ssrf.split(url)
    schemes = SCHEMES[kind]
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        allowed = " or ".join(f"{name}://" for name in schemes)
        raise BadTarget(f"a {kind} sink's url starts with {allowed}")
    if parts.query or parts.fragment:
        raise BadTarget(
            "a sink's url takes no query or fragment: its options (TLS checks, files) are not "
            "the tenant's to set"
        )
    host, _ip = ssrf.check_host(parts, allowlist)
    port = parts.port or schemes[scheme]
    return BrokerUrl(url, scheme, host, port, _public(parts, scheme, host, port))


def _public(parts: SplitResult, scheme: str, host: str, port: int) -> str:
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}:{port}{parts.path}"


def check_template(template: str, what: str) -> str:
    """The template, or BadTarget when it names anything but ``{tenant}``, ``{session}`` and
    ``{type}`` or has a stray brace."""
    for name in PLACEHOLDER.findall(template):
        if name not in FIELDS:
            raise BadTarget(f"{what} may use {{tenant}}, {{session}} and {{type}}, not {{{name}}}")
    if "{" in PLACEHOLDER.sub("", template) or "}" in PLACEHOLDER.sub("", template):
        raise BadTarget(f"{what} has a brace that opens or closes no placeholder")
    return template


def check_stream_name(name: str) -> str:
    """A JetStream stream's name: letters, digits, ``_`` and ``-`` (64 at most)."""
    if not STREAM_NAME.match(name):
        raise BadTarget("a NATS stream's name has 1-64 letters, digits, '_' and '-'")
    return name


def nats_subjects(template: str) -> list[str]:
    """The subjects a NATS stream must take for a subject template: its fixed start and ``>``
    (``zapgate.{tenant}.{type}`` gives ``zapgate.>``), or the subject itself when fixed."""
    check_template(template, "subject")
    literal = PLACEHOLDER.split(template)[::2]
    if not all(NATS_LITERAL.match(part) for part in literal):
        raise BadTarget("a subject's fixed parts use letters, digits, '_', '-' and '.' only")
    start = literal[0]
    if len(literal) == 1:
        tokens = start.split(".")
        if not all(tokens):
            raise BadTarget("a subject has no empty token (no leading, trailing or double '.')")
        return [start]
    if not start or not start.endswith(".") or ".." in start or start.startswith("."):
        raise BadTarget(
            "a subject template begins with a fixed token and a dot, such as "
            "zapgate.{tenant}.{session}.{type}"
        )
    return [f"{start}>"]


def render(template: str, tenant: str, session: str | None, event_type: str) -> str:
    """The template filled in for one event."""
    values = {"tenant": tenant, "session": session or NO_SESSION, "type": event_type}
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
