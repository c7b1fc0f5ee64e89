"""SSRF guard: IP literals in every spelling, local names, URL shape, allowlist, DNS rebinding."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest

from zapgate.webhooks.ssrf import (
    Allowlist,
    ParsedTarget,
    UnsafeUrl,
    check_url,
    non_public_reason,
    parse_ipv4,
    resolve_checked,
)

NONE = Allowlist()
HINT = "ZAPGATE_WEBHOOK_ALLOWLIST"

REFUSED_ADDRESSES = [
    ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://127.1/", "127.1 (127.0.0.1) is a loopback address"),
    ("http://2130706433/", "(127.0.0.1) is a loopback address"),
    ("http://0x7f000001/", "(127.0.0.1) is a loopback address"),
    ("http://0X7F.0.0.1/", "(127.0.0.1) is a loopback address"),
    ("http://0177.0.0.1/", "(127.0.0.1) is a loopback address"),
    ("http://0x7f.1/", "(127.0.0.1) is a loopback address"),
    ("http://127.0.0.1./", "(127.0.0.1) is a loopback address"),
    ("http://１２７．０．０．１/", "(127.0.0.1) is a loopback address"),
    ("http://[::1]/", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:7f00:1]/", "IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:169.254.169.254]/", "IPv4-mapped form of 169.254.169.254, the cloud"),
    ("http://[::127.0.0.1]/", "IPv4-compatible form of 127.0.0.1, a loopback address"),
    ("http://[::8.8.8.8]/", "deprecated IPv4-compatible form of 8.8.8.8"),
    ("http://[2002:a00:1::]/", "6to4 address of 10.0.0.1, a private address"),
    ("http://[2002:7f00:1::1]/", "6to4 address of 127.0.0.1, a loopback address"),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 form of 169.254.169.254, the cloud metadata"),
    ("http://[64:ff9b::192.168.1.1]/", "NAT64 form of 192.168.1.1, a private address"),
    ("http://[64:ff9b:1::1]/", "a local-use NAT64 address"),
    # Teredo: client 10.0.0.1 is stored inverted in the last 32 bits.
    ("http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "Teredo address with client 10.0.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata address"),
    ("http://169.254.1.1/", "a link-local address"),
    ("http://0.0.0.0/", "0.0.0.0 is the unspecified address"),
    ("http://0/", "0 (0.0.0.0) is the unspecified address"),
    ("http://0.1.2.3/", "a 'this network' address"),
    ("http://[::]/", ":: is the unspecified address"),
    ("http://10.0.0.1/", "a private address"),
    ("http://172.16.5.4/", "a private address"),
    ("http://192.168.0.1/", "a private address"),
    ("http://100.64.0.1/", "a carrier-grade NAT (shared) address"),
    ("http://100.127.255.254/", "a carrier-grade NAT (shared) address"),
    ("http://192.0.0.8/", "an IETF protocol assignment address"),
    ("http://192.0.2.1/", "a documentation address"),
    ("http://198.18.0.1/", "a benchmarking address"),
    ("http://198.19.255.255/", "a benchmarking address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://239.255.255.250/", "a multicast address"),
    ("http://240.0.0.1/", "a reserved address"),
    ("http://255.255.255.255/", "the broadcast address"),
    ("http://[fd12:3456:789a::1]/", "a unique-local address"),
    ("http://[fc00::1]/", "a unique-local address"),
    ("http://[fe80::1]/", "a link-local address"),
    ("http://[fec0::1]/", "a deprecated site-local address"),
    ("http://[ff02::1]/", "a multicast address"),
    ("http://[2001:db8::1]/", "a documentation address"),
    ("http://[100::1]/", "a discard-only address"),
    ("http://[2001:2::1]/", "a benchmarking address"),
    ("https://[::1]:8443/hook", "::1 is a loopback address"),
]

REFUSED_NAMES = [
    ("http://localhost/", "localhost is a local-network name"),
    ("http://LOCALHOST:8080/", "localhost is a local-network name"),
    ("http://localhost./", "localhost is a local-network name"),
    ("http://ｌｏｃａｌｈｏｓｔ/", "localhost is a local-network name"),
    ("http://api.localhost/", "api.localhost is a local-network name"),
    ("http://localhost.localdomain/", "localhost.localdomain is a local-network name"),
    ("http://metadata.google.internal/", "metadata.google.internal is a local-network name"),
    ("http://hooks.internal/", "hooks.internal is a local-network name"),
    ("http://printer.local/", "printer.local is a local-network name"),
    ("http://router.home.arpa/", "router.home.arpa is a local-network name"),
    ("http://redis:6379/", "redis is a single-label name"),
]

PUBLIC = [
    "https://example.com/webhooks/zapgate",
    "http://hooks.example.com:8080/in?token=abc",
    "https://8.8.8.8/",
    "https://1.1.1.1:8443/x",
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/",
    "http://[2002:808:808::1]/",
    "http://[64:ff9b::808:808]/",
    "https://xn--bcher-kva.example/",
    "https://bücher.example/",
    "https://my_service.example.com/",
    "https://192.0.0.9.nip.example/",
    "https://local.example.com/",
    "https://internal.example.com/",
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_ADDRESSES + REFUSED_NAMES)
def test_refused_at_registration(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl) as caught:
        check_url(url, NONE)
    message = str(caught.value)
    assert reason in message
    assert HINT in message


def test_message_says_exactly_what_to_allowlist() -> None:
    with pytest.raises(UnsafeUrl) as caught:
        check_url("http://127.0.0.1:9000/hook", NONE)
    assert str(caught.value) == (
        "127.0.0.1 is a loopback address; add 127.0.0.1 to ZAPGATE_WEBHOOK_ALLOWLIST to allow it"
    )


@pytest.mark.parametrize("url", PUBLIC)
def test_public_targets_accepted(url: str) -> None:
    assert isinstance(check_url(url, NONE), ParsedTarget)


def test_parsed_target_is_normalised() -> None:
    target = check_url("HTTPS://Hooks.Example.COM.:443/in?x=1#fragment", NONE)
    assert target == ParsedTarget(
        url="https://hooks.example.com/in?x=1",
        scheme="https",
        host="hooks.example.com",
        port=443,
        ip=None,
    )
    v6 = check_url("http://[2606:4700:4700:0::1111]:8080", NONE)
    assert (v6.host, v6.port) == ("2606:4700:4700::1111", 8080)
    assert v6.url == "http://[2606:4700:4700::1111]:8080/"
    assert v6.ip == ipaddress.ip_address("2606:4700:4700::1111")
    assert check_url("https://bücher.example/", NONE).host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    "spelling",
    ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.1", "10.1.2", "0300.0250.1.1", "1"],
)
def test_loose_ipv4_matches_inet_aton(spelling: str) -> None:
    assert parse_ipv4(spelling) == ipaddress.IPv4Address(socket.inet_aton(spelling))


@pytest.mark.parametrize(
    "url",
    [
        "http://1.2.3.4.5/",
        "http://256.0.0.1/",
        "http://08.0.0.1/",
        "http://0x/",
        "http://4294967296/",
    ],
)
def test_invalid_numeric_hosts_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="looks like an IPv4 address but is not a valid one"):
        check_url(url, NONE)


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass@example.com/",
        "http://user@example.com/",
        "http://@example.com/",
        "https://example.com@127.0.0.1/",
        "http://example.com\\@127.0.0.1/",
    ],
)
def test_userinfo_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="credentials"):
        check_url(url, NONE)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com:70/_x",
        "javascript:alert(1)",
        "ws://example.com/",
        "example.com/hook",
        "//example.com/hook",
    ],
)
def test_bad_schemes_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="use http or https"):
        check_url(url, NONE)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http:///hook", "no host"),
        ("http://:8080/hook", "no host"),
        ("https://", "no host"),
        ("http://example.com:0/", "port 0 is out of range"),
        ("http://example.com:65536/", "malformed"),
        ("http://example.com:http/", "malformed"),
        ("http://[::1/", "malformed"),
        ("http://[fe80::1%25eth0]/", "zone identifier"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com/\r\nX-Injected: 1", "control characters"),
        ("http://exa%2eample.com/", "not a valid host name"),
        ("http://-bad-.example/", "not a valid host name"),
        ("http://a..b.example/", "not a valid host name"),
    ],
)
def test_malformed_urls_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match=reason):
        check_url(url, NONE)


def test_unsafe_url_is_a_value_error() -> None:
    assert issubclass(UnsafeUrl, ValueError)


# --- allowlist ---------------------------------------------------------------------------


def test_allowlisted_loopback_and_cidr_accepted() -> None:
    allow = Allowlist.parse("127.0.0.1, 10.0.0.0/8 ,hooks.internal,*.svc.cluster.internal,[::1]")
    assert check_url("http://127.0.0.1:9000/hook", allow).ip == ipaddress.ip_address("127.0.0.1")
    assert check_url("http://0x7f000001/", allow).host == "127.0.0.1"
    assert check_url("http://[::ffff:127.0.0.1]/", allow).host == "::ffff:7f00:1"
    assert check_url("http://10.20.30.40/", allow).host == "10.20.30.40"
    assert check_url("http://[::1]:8080/", allow).port == 8080
    assert check_url("http://hooks.internal:8080/", allow).host == "hooks.internal"
    assert check_url("http://a.svc.cluster.internal/", allow).host == "a.svc.cluster.internal"
    for url in ("http://127.0.0.2/", "http://11.0.0.1.internal/", "http://192.168.1.1/"):
        with pytest.raises(UnsafeUrl):
            check_url(url, allow)


def test_allowlist_parse_and_admits() -> None:
    allow = Allowlist.parse("127.0.0.1,10.0.0.0/8,Hooks.Internal.,*.corp.example,fd00::/8,,")
    assert allow.admits_ip("127.0.0.1")
    assert allow.admits_ip(ipaddress.ip_address("10.255.0.1"))
    assert allow.admits_ip("fd00::1234")
    assert allow.admits_ip("::ffff:127.0.0.1")
    assert not allow.admits_ip("127.0.0.2")
    assert allow.admits_host("hooks.internal")
    assert allow.admits_host("HOOKS.INTERNAL.")
    assert allow.admits_host("a.b.corp.example")
    assert not allow.admits_host("corp.example")
    assert not allow.admits_host("evilcorp.example")
    assert not allow.admits_host("other.internal")
    assert Allowlist.parse("") == Allowlist()
    assert Allowlist.parse(" , ") == Allowlist()


@pytest.mark.parametrize("text", ["127.1", "not a host", "10.0.0.0/33", "http://x.example/"])
def test_allowlist_refuses_bad_entries(text: str) -> None:
    with pytest.raises(ValueError, match="ZAPGATE_WEBHOOK_ALLOWLIST"):
        Allowlist.parse(text)


def test_non_public_reason_for_public_addresses_is_none() -> None:
    for address in ("8.8.8.8", "2606:4700:4700::1111", "::ffff:1.1.1.1", "64:ff9b::808:808"):
        assert non_public_reason(ipaddress.ip_address(address)) is None


# --- send time: resolution, rebinding, pinning ------------------------------------------


def _fake_getaddrinfo(answers: dict[str, list[str]]) -> Any:
    async def getaddrinfo(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in answers[host]
        ]

    return getaddrinfo


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(answers: dict[str, list[str]]) -> None:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(loop, "getaddrinfo", _fake_getaddrinfo(answers))

    return install


async def test_localhost_resolves_to_loopback_and_is_refused() -> None:
    with pytest.raises(UnsafeUrl, match=r"localhost resolves to .* a loopback address"):
        await resolve_checked("localhost", 80, NONE)


async def test_numeric_spelling_is_checked_after_resolution() -> None:
    with pytest.raises(UnsafeUrl, match=r"resolves to 127\.0\.0\.1"):
        await resolve_checked("2130706433", 80, NONE)


async def test_allowlisted_loopback_resolves() -> None:
    addresses = await resolve_checked("localhost", 80, Allowlist.parse("127.0.0.0/8,::1"))
    assert addresses
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)
    by_name = await resolve_checked("localhost", 80, Allowlist.parse("localhost"))
    assert set(by_name) == set(addresses)
    assert await resolve_checked("127.0.0.1", 80, Allowlist.parse("127.0.0.1")) == ["127.0.0.1"]


async def test_public_ip_literal_needs_no_dns() -> None:
    assert await resolve_checked("8.8.8.8", 443, NONE) == ["8.8.8.8"]
    assert await resolve_checked("[2606:4700:4700::1111]", 443, NONE) == ["2606:4700:4700::1111"]


async def test_rebinding_to_a_private_address_is_refused(fake_dns: Any) -> None:
    fake_dns({"hooks.example.com": ["93.184.216.34", "10.0.0.7"]})
    assert check_url("https://hooks.example.com/in", NONE).host == "hooks.example.com"
    with pytest.raises(UnsafeUrl) as caught:
        await resolve_checked("hooks.example.com", 443, NONE)
    assert str(caught.value) == (
        "hooks.example.com resolves to 10.0.0.7, which is a private address; "
        "add 10.0.0.7 to ZAPGATE_WEBHOOK_ALLOWLIST to allow it"
    )


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "::1", "::ffff:127.0.0.1", "fe80::1%eth0", "0.0.0.0"]
)
async def test_rebinding_to_any_non_public_form_is_refused(fake_dns: Any, address: str) -> None:
    fake_dns({"rebind.example.com": [address]})
    with pytest.raises(UnsafeUrl, match=r"rebind\.example\.com resolves to"):
        await resolve_checked("rebind.example.com", 443, NONE)


async def test_public_resolution_is_returned_for_pinning(fake_dns: Any) -> None:
    fake_dns({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"]})
    addresses = await resolve_checked("hooks.example.com", 443, NONE)
    assert addresses == ["93.184.216.34", "2606:2800:220:1::1"]


async def test_allowlisted_name_admits_its_private_addresses(fake_dns: Any) -> None:
    fake_dns({"hooks.internal": ["10.1.2.3"], "other.example.com": ["10.1.2.3"]})
    allow = Allowlist.parse("hooks.internal")
    assert await resolve_checked("hooks.internal", 8080, allow) == ["10.1.2.3"]
    with pytest.raises(UnsafeUrl):
        await resolve_checked("other.example.com", 8080, allow)
    assert await resolve_checked("other.example.com", 8080, Allowlist.parse("10.0.0.0/8")) == [
        "10.1.2.3"
    ]


async def test_dns_failure_is_a_gaierror(fake_dns: Any) -> None:
    fake_dns({})
    with pytest.raises(socket.gaierror, match="not known"):
        await resolve_checked("nowhere.example.com", 443, NONE)
