"""`--allowed-hosts` over HTTP: matched against the canonical host name without the port, on
every hop, before the SSRF check (fetch-and-security.md, Host allow-list)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import httpx
import pytest
from tests.fetch_origin import SMALL_JPEG, Origin
from tests.serverproc import ServerProcess, run_cli

NOT_ALLOWED = (403, "fetch: host is not allowed")


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture(scope="module")
def servers() -> Iterator[Callable[..., httpx.Client]]:
    """`servers(pattern, ssrf=False)` → a client of a server with that allow-list."""
    started: dict[tuple[str, bool], tuple[ServerProcess, httpx.Client]] = {}

    def get(pattern: str, ssrf: bool = False) -> httpx.Client:
        key = (pattern, ssrf)
        if key not in started:
            args = ["--enable-fetch", "--allowed-hosts", pattern]
            proc = ServerProcess(args if ssrf else [*args, "--disable-ssrf-protection"])
            started[key] = (proc, proc.client(timeout=20.0))
        return started[key][1]

    yield get
    for proc, client in started.values():
        client.close()
        proc.__exit__(None)


def fetch(client: httpx.Client, url: str) -> tuple[int, str]:
    r = client.get("/metadata", params={"url": url})
    return r.status_code, r.text if r.status_code != 200 else "ok"


def test_the_port_is_not_part_of_the_match(
    origin: Origin, servers: Callable[..., httpx.Client]
) -> None:
    client = servers(r"^127\.0\.0\.1$")
    image = f"/img/{SMALL_JPEG}"
    assert fetch(client, origin.url(image)) == (200, "ok")
    # Canonicalised before matching: every IPv4 spelling is 127.0.0.1.
    assert fetch(client, origin.url(image, "2130706433")) == (200, "ok")
    assert fetch(client, origin.url(image, "0x7f.0.0.1")) == (200, "ok")
    with origin.untouched():
        assert fetch(client, origin.url(image, "localhost")) == NOT_ALLOWED
        assert fetch(client, origin.url(image, "[::1]")) == NOT_ALLOWED
        assert fetch(client, origin.url(image, "127.0.0.2")) == NOT_ALLOWED


def test_a_pattern_requiring_a_port_matches_nothing(
    origin: Origin, servers: Callable[..., httpx.Client]
) -> None:
    client = servers(r"^127\.0\.0\.1:[0-9]+$")
    with origin.untouched():
        assert fetch(client, origin.url(f"/img/{SMALL_JPEG}")) == NOT_ALLOWED


def test_every_redirect_hop_is_checked(
    origin: Origin, servers: Callable[..., httpx.Client]
) -> None:
    client = servers(r"^127\.0\.0\.1$")
    origin.reset()
    to_localhost = origin.url("/redirect?" + urlencode({"to": origin.url("/x", "localhost")}))
    assert fetch(client, to_localhost) == NOT_ALLOWED
    assert len(origin.requests) == 1
    origin.reset()
    same_host = origin.url("/redirect?" + urlencode({"to": f"/img/{SMALL_JPEG}"}))
    assert fetch(client, same_host) == (200, "ok")
    assert len(origin.requests) == 2


def test_names_are_matched_in_canonical_form(
    origin: Origin, servers: Callable[..., httpx.Client]
) -> None:
    client = servers(r"^localhost$")
    assert fetch(client, origin.url(f"/img/{SMALL_JPEG}", "LOCALHOST")) == (200, "ok")
    with origin.untouched():
        assert fetch(client, origin.url(f"/img/{SMALL_JPEG}")) == NOT_ALLOWED
    if origin.ipv6:
        ipv6 = servers(r"^\[::1\]$")
        assert fetch(ipv6, origin.url(f"/img/{SMALL_JPEG}", "[0:0::1]")) == (200, "ok")


def test_allow_list_and_ssrf_protection_must_both_pass(
    origin: Origin, servers: Callable[..., httpx.Client]
) -> None:
    client = servers(r"^localhost$", ssrf=True)
    with origin.untouched():
        # Allowed by the list, refused by the SSRF check ...
        assert fetch(client, origin.url("/x", "localhost")) == (
            403,
            "fetch: host resolves to private IP (Loopback)",
        )
        # ... and the list is checked first.
        assert fetch(client, origin.url("/x")) == NOT_ALLOWED


def test_a_backtracking_pattern_the_heuristic_misses_cannot_stall_the_server(
    origin: Origin, servers: Callable[..., httpx.Client]
) -> None:
    client = servers(r"^(a|a)*$")
    started = time.monotonic()
    with origin.untouched():
        assert fetch(client, origin.url("/x", "a" * 60 + "b")) == NOT_ALLOWED
    assert time.monotonic() - started < 5
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(a+)+", "Invalid allowed-hosts regex: pattern may cause catastrophic backtracking"),
        ("(", "Invalid allowed-hosts regex"),
    ],
)
def test_refused_patterns_stop_the_server(pattern: str, message: str) -> None:
    result = run_cli(["--enable-fetch", "--allowed-hosts", pattern])
    assert result.returncode == 1
    assert message in result.stdout + result.stderr
