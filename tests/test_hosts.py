"""The `--allowed-hosts` pattern: startup heuristic, compilation and the per-hop match."""

from __future__ import annotations

import time

import pytest

from imaged.errors import ConfigError
from imaged.fetch.hosts import compile_allowed_hosts, host_allowed

BACKTRACKING = "Invalid allowed-hosts regex: pattern may cause catastrophic backtracking"


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+", "(a*)*", "(x{1,5})+", "(a+){2}", r"(\w+)?\s*.+", "^(a|b+)*c+$"],
)
def test_backtracking_heuristic(pattern: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_allowed_hosts(pattern)
    assert caught.value.message == BACKTRACKING
    assert caught.value.fields == {"value": pattern}


@pytest.mark.parametrize("pattern", ["(", "[a-", "a**", "(?<", r"\p{L}"])
def test_patterns_python_cannot_compile(pattern: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_allowed_hosts(pattern)
    assert caught.value.message == "Invalid allowed-hosts regex"


def test_empty_means_no_allow_list() -> None:
    assert compile_allowed_hosts(None) is None
    assert compile_allowed_hosts("") is None
    assert host_allowed(None, "anything.example")


def test_unanchored_search_on_the_host_name_without_port() -> None:
    allowed = compile_allowed_hosts(r"^([a-z0-9-]+\.)?example\.com$")
    assert allowed is not None and allowed.linear_time
    assert host_allowed(allowed, "example.com")
    assert host_allowed(allowed, "img.example.com")
    assert not host_allowed(allowed, "evil-example.com.attacker.net")
    assert not host_allowed(allowed, "a.b.example.com")
    unanchored = compile_allowed_hosts(r"example\.com")
    assert unanchored is not None
    assert host_allowed(unanchored, "example.com.attacker.net")
    # A pattern that requires a port matches nothing: the port is never part of the text.
    with_port = compile_allowed_hosts(r"^127\.0\.0\.1:[0-9]+$")
    assert with_port is not None and not host_allowed(with_port, "127.0.0.1")
    ipv6 = compile_allowed_hosts(r"^\[::1\]$")
    assert ipv6 is not None and host_allowed(ipv6, "[::1]")


def test_python_only_syntax_keeps_python_semantics() -> None:
    lookahead = compile_allowed_hosts(r"^(?!internal\.)[a-z.]+\.example\.com$")
    assert lookahead is not None and not lookahead.linear_time
    assert host_allowed(lookahead, "img.example.com")
    assert not host_allowed(lookahead, "internal.example.com")
    # `{,n}` means 0..n in Python but is literal text in RE2: Python's meaning is kept.
    counted = compile_allowed_hosts(r"^a{,3}\.example$")
    assert counted is not None and not counted.linear_time
    assert host_allowed(counted, "aa.example")
    assert not host_allowed(counted, "aaaa.example")
    end = compile_allowed_hosts(r"example\.com\Z")
    assert end is not None and host_allowed(end, "cdn.example.com")


def test_patterns_the_heuristic_misses_still_match_in_linear_time() -> None:
    # `(a|a)*` passes the heuristic but is exponential on a backtracking engine.
    allowed = compile_allowed_hosts(r"^(a|a)*$")
    assert allowed is not None and allowed.linear_time
    started = time.monotonic()
    assert not host_allowed(allowed, "a" * 5000 + "b.example")
    assert host_allowed(allowed, "a" * 5000)
    assert time.monotonic() - started < 1.0
