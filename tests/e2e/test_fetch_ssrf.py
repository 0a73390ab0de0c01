"""SSRF protection over HTTP: every spelling of a loopback or private address is refused
before any connection reaches the origin; without protection the same URLs do reach it
(proving each spelling is a real way in). fetch-and-security.md, SSRF protection."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.fetch_origin import SMALL_JPEG, Origin
from tests.serverproc import ServerProcess

# (host part of the URL, reason, reaches the origin when unprotected)
SPELLINGS = [
    ("127.0.0.1", "Loopback", True),
    ("2130706433", "Loopback", True),
    ("0x7f000001", "Loopback", True),
    ("0X7F.1", "Loopback", True),
    ("127.1", "Loopback", True),
    ("127.0.1", "Loopback", True),
    ("0177.0.0.1", "Loopback", True),
    ("0177.1", "Loopback", True),
    ("017700000001", "Loopback", True),
    ("127.000.000.001", "Loopback", True),
    ("127.0.0.1.", "Loopback", True),
    ("%31%32%37.0.0.1", "Loopback", True),
    ("１２７.０.０.１", "Loopback", True),
    ("127.127.127.127", "Loopback", False),
    ("evil.example@127.0.0.1", "Loopback", True),
    ("localhost", "Loopback", True),
    ("LocalHost", "Loopback", True),
    ("0", "Current network", True),
    ("0.0.0.0", "Current network", True),
    ("[::1]", "Loopback", True),
    ("[0:0:0:0:0:0:0:1]", "Loopback", True),
    ("[::]", "Unspecified", True),
    ("[::ffff:127.0.0.1]", "IPv4-mapped Loopback", True),
    ("[::ffff:7f00:1]", "IPv4-mapped Loopback", True),
    ("[::127.0.0.1]", "IPv4-compatible Loopback", False),
    ("[64:ff9b::127.0.0.1]", "NAT64 Loopback", False),
    ("[2002:7f00:1::1]", "6to4 Loopback", False),
    ("10.0.0.1", "Private network", False),
    ("172.16.0.1", "Private network", False),
    ("192.168.1.1", "Private network", False),
    ("169.254.169.254", "Link-local", False),
    ("100.64.0.1", "Carrier-grade NAT", False),
    ("[::ffff:169.254.169.254]", "IPv4-mapped Link-local", False),
    ("[fd00::1]", "Unique local", False),
    ("[fe80::1]", "Link-local", False),
    ("[fec0::1]", "Site-local", False),
]


def loopback_names_in_hosts_file() -> list[str]:
    """Names /etc/hosts maps to loopback: resolved by the OS without any DNS traffic."""
    names = []
    for line in Path("/etc/hosts").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            address = ipaddress.ip_address(fields[0])
        except ValueError:
            continue
        if address.is_loopback:
            names += [n for n in fields[1:] if n.isascii() and "." not in n]
    return sorted(set(names))


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture(scope="module")
def protected() -> Iterator[httpx.Client]:
    with ServerProcess(["--enable-fetch"]) as proc, proc.client() as client:
        yield client


@pytest.fixture(scope="module")
def unprotected() -> Iterator[httpx.Client]:
    with (
        ServerProcess(["--enable-fetch", "--disable-ssrf-protection"]) as proc,
        proc.client() as client,
    ):
        yield client


def url(origin: Origin, host: str, path: str = f"/img/{SMALL_JPEG}") -> str:
    return f"http://{host}:{origin.port}{path}"


@pytest.mark.parametrize(("host", "reason", "reachable"), SPELLINGS)
def test_refused_before_any_connection(
    origin: Origin, protected: httpx.Client, host: str, reason: str, reachable: bool
) -> None:
    for endpoint in ("/transform", "/metadata"):
        with origin.untouched():
            r = protected.get(endpoint, params={"url": url(origin, host)})
        assert r.status_code == 403, (host, r.text)
        assert r.text == f"fetch: host resolves to private IP ({reason})"
        assert r.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(("host", "reason", "reachable"), [s for s in SPELLINGS if s[2]])
def test_the_same_spellings_reach_the_origin_without_protection(
    origin: Origin, unprotected: httpx.Client, host: str, reason: str, reachable: bool
) -> None:
    origin.reset()
    r = unprotected.get("/metadata", params={"url": url(origin, host)})
    if host in ("[::1]", "[0:0:0:0:0:0:0:1]", "[::]") and not origin.ipv6:
        # The origin could not listen on [::1] on this machine: nothing to reach.
        assert (r.status_code, r.text) == (502, "fetch: unable to make request")
        return
    assert r.status_code == 200, (host, r.text)
    assert r.json()["width"] == 640
    assert len(origin.requests) == 1


def test_hosts_file_names_resolving_to_loopback(
    origin: Origin, protected: httpx.Client, unprotected: httpx.Client
) -> None:
    names = loopback_names_in_hosts_file()
    assert "localhost" in names
    for name in names:
        with origin.untouched():
            r = protected.get("/transform", params={"url": url(origin, name)})
        assert (r.status_code, r.text) == (403, "fetch: host resolves to private IP (Loopback)")
        origin.reset()
        assert unprotected.get("/metadata", params={"url": url(origin, name)}).status_code == 200


def test_redirects_are_checked_too(origin: Origin, protected: httpx.Client) -> None:
    # The first hop is already refused, so the origin's redirect is never even requested.
    target = url(origin, "127.0.0.1", "/redirect?to=http://10.0.0.1/")
    with origin.untouched():
        r = protected.get("/transform", params={"url": target})
    assert (r.status_code, r.text) == (403, "fetch: host resolves to private IP (Loopback)")


def test_validation_errors_come_before_resolution(origin: Origin, protected: httpx.Client) -> None:
    with origin.untouched():
        for raw, status, text in [
            ("notaurl", 400, "fetch: invalid URL"),
            ("http//missing-colon", 400, "fetch: invalid URL"),
            ("://nothing", 400, "fetch: invalid URL"),
            ("http://[fe80::1%25eth0]/", 400, "fetch: invalid URL"),
            (
                f"ftp://127.0.0.1:{origin.port}/",
                400,
                "fetch: only http and https URLs are supported",
            ),
            ("file:///etc/passwd", 400, "fetch: only http and https URLs are supported"),
            ("gopher://127.0.0.1:6379/_INFO", 400, "fetch: only http and https URLs are supported"),
        ]:
            r = protected.get("/transform", params={"url": raw})
            assert (r.status_code, r.text) == (status, text), raw


def test_head_requests_are_refused_the_same_way(origin: Origin, protected: httpx.Client) -> None:
    with origin.untouched():
        r = protected.head("/transform", params={"url": url(origin, "127.1")})
    assert r.status_code == 403 and r.content == b""
