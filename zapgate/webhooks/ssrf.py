"""SSRF guard for webhook URLs: checked at registration and again, after DNS, at send time.

Registration (:func:`check_url`) refuses non-HTTP schemes, credentials in the URL, IP
literals in any spelling that are not public, and names that only make sense inside a
network. Sending (:func:`resolve_checked`) resolves the name once, refuses it if any
address is not public (DNS rebinding), and returns the addresses to connect to. The
operator can admit hosts, IPs and CIDRs with ``ZAPGATE_WEBHOOK_ALLOWLIST`` (the JWKS URL has
its own list, ``ZAPGATE_JWT_JWKS_ALLOWLIST``: an :class:`Allowlist` names its setting).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

ALLOWLIST_SETTING = "ZAPGATE_WEBHOOK_ALLOWLIST"
SCHEMES = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LOCAL_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "broadcasthost"}
)
_LOCAL_SUFFIXES = (
    ".localhost",
    ".localdomain",
    ".local",
    ".internal",
    ".intranet",
    ".lan",
    ".home",
    ".corp",
    ".home.arpa",
)
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_IPV4_NUMBER = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)\Z")

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# Most specific first; the first match names the reason.
_NON_PUBLIC: tuple[tuple[IPNetwork, str], ...] = (
    (_V4("0.0.0.0/32"), "the unspecified address"),
    (_V4("0.0.0.0/8"), "a 'this network' address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("100.64.0.0/10"), "a carrier-grade NAT (shared) address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("169.254.169.254/32"), "the cloud metadata address (link-local)"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.0.0.0/24"), "an IETF protocol assignment address"),
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("192.88.99.0/24"), "a deprecated 6to4 relay address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("255.255.255.255/32"), "the broadcast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
    (_V6("::/128"), "the unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_V6("100::/64"), "a discard-only address"),
    (_V6("2001:2::/48"), "a benchmarking address"),
    (_V6("2001:db8::/32"), "a documentation address"),
    (_V6("2001::/23"), "an IETF protocol assignment address"),
    (_V6("3fff::/20"), "a documentation address"),
    (_V6("5f00::/16"), "an SRv6 segment identifier address"),
    (_V6("fc00::/7"), "a unique-local address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a deprecated site-local address"),
    (_V6("ff00::/8"), "a multicast address"),
)
_NAT64 = _V6("64:ff9b::/96")
_V4_COMPATIBLE = _V6("::/96")


class UnsafeUrl(ValueError):
    """A webhook URL or its target is refused; the message says why."""


class UnsafeAddress(UnsafeUrl):
    """A host name resolved to a refused address.

    The message names the address, so it is for the server's log only: what internal names
    resolve to is not the tenant's business. Show :attr:`public` instead.
    """

    public = "the host resolves to a non-public address"


@dataclass(frozen=True, slots=True)
class ParsedTarget:
    """A webhook URL that passed :func:`check_url`, with its host in normal form."""

    url: str
    scheme: str
    host: str
    port: int
    ip: IPAddress | None


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Hosts (``name`` or ``*.suffix``) and networks admitted despite the SSRF rules."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    setting: str = ALLOWLIST_SETTING
    """The setting it comes from, named in refusals."""

    @classmethod
    def parse(cls, text: str, setting: str = ALLOWLIST_SETTING) -> Allowlist:
        """Parse ``"127.0.0.1,10.0.0.0/8,hooks.internal,*.corp.example"``."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (part.strip() for part in text.split(",")):
            if not entry:
                continue
            network = _parse_network(entry)
            if network is not None:
                networks.append(network)
            else:
                hosts.add(_allowlist_host(entry, setting))
        return cls(frozenset(hosts), tuple(networks), setting)

    def admits_host(self, name: str) -> bool:
        """True when the host name (or a ``*.`` entry covering it) is listed."""
        name = name.lower().rstrip(".")
        if name in self.hosts:
            return True
        return any(h.startswith("*.") and name.endswith(h[1:]) for h in self.hosts)

    def admits_ip(self, ip: str | IPAddress) -> bool:
        """True when the address, or the IPv4 address it maps, is in a listed network."""
        address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
        candidates = [_without_scope(address)]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(a in n for a in candidates for n in self.networks)


def _parse_network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None


def _allowlist_host(entry: str, setting: str) -> str:
    wildcard = entry.startswith("*.")
    name = _ascii_host(entry[2:] if wildcard else entry)
    if name is None or _ends_in_number(name):
        raise ValueError(f"{setting}: {entry!r} is neither a host name, an IP nor a CIDR")
    return "*." + name if wildcard else name


def _without_scope(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return ipaddress.IPv6Address(int(ip))
    return ip


def _ipv4_number(part: str) -> int | None:
    if re.fullmatch(r"0x[0-9a-f]+", part):
        return int(part, 16)
    if re.fullmatch(r"0|[1-9][0-9]*", part):
        return int(part)
    if re.fullmatch(r"0[0-7]+", part):
        return int(part, 8)
    return None


def parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any ``inet_aton`` spelling (``127.1``, ``0x7f000001``, ``0177.0.0.1``)."""
    parts = text.lower().split(".")
    numbers = [_ipv4_number(part) for part in parts]
    if not 1 <= len(parts) <= 4 or any(n is None for n in numbers):
        return None
    *head, last = [n for n in numbers if n is not None]
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(parts)):
        return None
    value = last
    for index, number in enumerate(head):
        value |= number << (24 - 8 * index)
    return ipaddress.IPv4Address(value)


def _ends_in_number(host: str) -> bool:
    return bool(_IPV4_NUMBER.match(host.rsplit(".", 1)[-1]))


def non_public_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address (``"a loopback address"``), or None."""
    ip = _without_scope(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_reason(ip)
        if embedded is not None:
            return embedded or None
    for network, reason in _NON_PUBLIC:
        if ip.version == network.version and ip in network:
            return reason
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "not a globally routable address"
    return None


def _embedded_reason(ip: ipaddress.IPv6Address) -> str | None:
    """For IPv6 forms that carry an IPv4 address: a reason, ``""`` if fine, None if no such form."""
    if ip.ipv4_mapped is not None:
        return _wrap("an IPv4-mapped form of", ip.ipv4_mapped, refuse_public=False)
    if ip in _NAT64:
        return _wrap("a NAT64 form of", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), False)
    if ip.sixtofour is not None:
        return _wrap("a 6to4 address of", ip.sixtofour, refuse_public=False)
    if ip.teredo is not None:
        return _wrap("a Teredo address with client", ip.teredo[1], refuse_public=True)
    if ip in _V4_COMPATIBLE and int(ip) > 1:
        compatible = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        return _wrap("a deprecated IPv4-compatible form of", compatible, refuse_public=True)
    return None


def _wrap(kind: str, inner: ipaddress.IPv4Address, refuse_public: bool) -> str:
    reason = non_public_reason(inner)
    if reason is not None:
        return f"{kind} {inner}, {reason}"
    return f"{kind} {inner}" if refuse_public else ""


def _refusal(
    shown: str, reason: str, admit: str, allowlist: Allowlist, kind: type[UnsafeUrl] = UnsafeUrl
) -> UnsafeUrl:
    return kind(f"{shown} is {reason}; add {admit} to {allowlist.setting} to allow it")


def _ascii_host(host: str) -> str | None:
    """Lower-case ASCII (IDNA) form of a host name without its trailing dot, or None."""
    try:
        name = host.encode("idna").decode("ascii").lower() if not host.isascii() else host.lower()
    except UnicodeError:
        return None
    name = name.removesuffix(".")
    if not name or len(name) > 253 or not all(_LABEL.match(x) for x in name.split(".")):
        return None
    return name


def split(url: str) -> SplitResult:
    if any(c.isspace() or not c.isprintable() for c in url):
        raise UnsafeUrl("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a bad port
    except ValueError as exc:
        raise UnsafeUrl(f"the URL is malformed: {exc}") from None
    return parts


def _scheme_and_port(parts: SplitResult) -> tuple[str, int]:
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeUrl(f"scheme {scheme or '(none)'!r} is not allowed; use http or https")
    if "@" in parts.netloc:
        raise UnsafeUrl("credentials (user:pass@) in webhook URLs are not allowed")
    port = parts.port if parts.port is not None else SCHEMES[scheme]
    if not 1 <= port <= 65535:
        raise UnsafeUrl(f"port {port} is out of range (1-65535)")
    return scheme, port


def _ipv6_literal(raw: str) -> ipaddress.IPv6Address:
    if "%" in raw:
        raise UnsafeUrl(f"[{raw}] has a zone identifier, which webhook URLs cannot use")
    try:
        return ipaddress.IPv6Address(raw)
    except ValueError:
        raise UnsafeUrl(f"[{raw}] is not a valid IPv6 address") from None


def _parse_host(raw: str, bracketed: bool) -> tuple[str, IPAddress | None]:
    """The host in normal form, and its address when it is an IP literal."""
    if bracketed:
        ip: IPAddress | None = _ipv6_literal(raw)
        return str(ip), ip
    name = _ascii_host(raw)
    if name is None:
        raise UnsafeUrl(f"{raw!r} is not a valid host name")
    if not _ends_in_number(name):
        return name, None
    ip = parse_ipv4(name)
    if ip is None:
        raise UnsafeUrl(f"{raw!r} looks like an IPv4 address but is not a valid one")
    return str(ip), ip


def _check_ip(raw: str, ip: IPAddress, allowlist: Allowlist) -> None:
    reason = non_public_reason(ip)
    if reason is None or allowlist.admits_ip(ip):
        return
    shown = str(ip) if raw.lower() == str(ip) else f"{raw} ({ip})"
    raise _refusal(shown, reason, str(ip), allowlist)


def _check_name(name: str, allowlist: Allowlist) -> None:
    if allowlist.admits_host(name):
        return
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        raise _refusal(name, "a local-network name", name, allowlist)
    if "." not in name:
        reason = "a single-label name (resolved via local search domains)"
        raise _refusal(name, reason, name, allowlist)


def _rebuild(parts: SplitResult, scheme: str, host: str, port: int) -> str:
    netloc = f"[{host}]" if ":" in host else host
    if port != SCHEMES[scheme]:
        netloc = f"{netloc}:{port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{parts.path or '/'}{query}"


def check_url(url: str, allowlist: Allowlist) -> ParsedTarget:
    """Validate a webhook URL at registration; raise :class:`UnsafeUrl` saying why not.

    Host names that are not obviously local pass here: their addresses are checked by
    :func:`resolve_checked` each time a delivery is sent.
    """
    parts = split(url)
    scheme, port = _scheme_and_port(parts)
    host, ip = check_host(parts, allowlist)
    return ParsedTarget(_rebuild(parts, scheme, host, port), scheme, host, port, ip)


def check_host(parts: SplitResult, allowlist: Allowlist) -> tuple[str, IPAddress | None]:
    """A URL's host in normal form, and its address when it is an IP literal; raise
    :class:`UnsafeUrl` when it is refused (a name's addresses are checked when resolved)."""
    raw = parts.hostname
    if not raw:
        raise UnsafeUrl("the URL has no host")
    host, ip = _parse_host(raw, bracketed="[" in parts.netloc)
    if ip is not None:
        _check_ip(raw, ip, allowlist)
    else:
        _check_name(host, allowlist)
    return host, ip


def _unique(addresses: Iterable[str]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if ip not in found:
            found.append(ip)
    return found


async def resolve_checked(host: str, port: int, allowlist: Allowlist) -> list[str]:
    """Resolve ``host`` once and return its addresses, refusing any that is not public.

    Connect to exactly these addresses (pinning) so a second lookup cannot rebind the
    name. An allowlisted host name admits whatever it resolves to. A refused answer raises
    :class:`UnsafeAddress`; DNS failures raise :class:`OSError` (``socket.gaierror``), a
    transient delivery failure.
    """
    name = host.strip("[]")
    infos = await asyncio.get_running_loop().getaddrinfo(
        name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses = _unique(str(info[4][0]) for info in infos)
    if not addresses:
        raise socket.gaierror(f"{name} resolved to no address")
    if not allowlist.admits_host(name):
        for ip in addresses:
            reason = non_public_reason(ip)
            if reason is not None and not allowlist.admits_ip(ip):
                shown = f"{name} resolves to {ip}, which"
                raise _refusal(shown, reason, str(ip), allowlist, UnsafeAddress)
    return [str(ip) for ip in addresses]
