"""WHATWG URL parsing and host canonicalisation of fetch targets (fetch-and-security.md)."""

from __future__ import annotations

import pytest

from imaged.errors import FetchError
from imaged.fetch.urls import parse_target, redirect_url

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0X7F000001/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0177.0.0.1/",
    "http://0177.1/",
    "http://017700000001/",
    "http://0x7f.1/",
    "http://127.000.000.001/",
    "http://127.0.0.1./",
    "http://%31%32%37.0.0.1/",
    "http://１２７.０.０.１/",
    "http://127。0。0。1/",
    "http://evil.example@127.0.0.1/",
    "http:\\\\127.0.0.1\\",
    "HTTP://127.0.0.1:80/",
    "http://127.0.0.\t1/",
]


@pytest.mark.parametrize("raw", LOOPBACK_SPELLINGS)
def test_ipv4_number_forms_become_one_canonical_address(raw: str) -> None:
    target = parse_target(raw)
    assert target.hostname == "127.0.0.1"
    assert target.scheme == "http"
    assert target.port == 80


@pytest.mark.parametrize(
    ("raw", "hostname"),
    [
        ("http://[::ffff:127.0.0.1]/", "[::ffff:7f00:1]"),
        ("http://[0:0:0:0:0:0:0:1]/", "[::1]"),
        ("http://[::1]:8080/x", "[::1]"),
        ("http://[::127.0.0.1]/", "[::7f00:1]"),
        ("http://[0000:0000::FFFF:7F00:0001]/", "[::ffff:7f00:1]"),
        ("http://[64:ff9b::10.0.0.1]/", "[64:ff9b::a00:1]"),
        ("http://0/", "0.0.0.0"),
        ("http://0xffffffff/", "255.255.255.255"),
        ("http://LOCALHOST/", "localhost"),
        ("http://ExAmple.COM./", "example.com."),
        ("http://bücher.de/", "xn--bcher-kva.de"),
        ("https://MÜNCHEN.de/", "xn--mnchen-3ya.de"),
        ("http://ex%41mple.com/", "example.com"),
    ],
)
def test_hosts_are_canonical(raw: str, hostname: str) -> None:
    assert parse_target(raw).hostname == hostname


def test_ports_hrefs_and_fragments() -> None:
    target = parse_target("https://Example.com:443/a b/ü?q=1 2#frag")
    assert target.port == 443
    assert target.href == "https://example.com/a%20b/%C3%BC?q=1%202"
    target = parse_target("http://example.com:8080")
    assert (target.hostname, target.port, target.href) == (
        "example.com",
        8080,
        "http://example.com:8080/",
    )
    assert parse_target("https://example.com/").port == 443
    # Credentials stay in the URL (they become that hop's Basic auth).
    assert parse_target("http://u:p@example.com/").href == "http://u:p@example.com/"


@pytest.mark.parametrize(
    "raw",
    [
        "notaurl",
        "http//missing-colon",
        "://nothing",
        "",
        "/relative/path",
        "http://",
        "http://exa mple.com/",
        "http://example.com:99999/",
        "http://1.2.3.4.5/",
        "http://999.1.1.1/",
        "http://4294967296/",
        "http://[fe80::1%25eth0]/",
        "http://[::1/",
        "http://[1::2::3]/",
        "http://ex\ud800ample.com/",
    ],
)
def test_invalid_urls(raw: str) -> None:
    with pytest.raises(FetchError) as caught:
        parse_target(raw)
    assert (caught.value.status, caught.value.message) == (400, "fetch: invalid URL")


@pytest.mark.parametrize(
    "raw",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "data:image/png;base64,AAAA",
        "gopher://127.0.0.1:6379/_",
        "javascript:alert(1)",
        "ws://example.com/",
    ],
)
def test_only_http_and_https(raw: str) -> None:
    with pytest.raises(FetchError) as caught:
        parse_target(raw)
    assert (caught.value.status, caught.value.message) == (
        400,
        "fetch: only http and https URLs are supported",
    )


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/other", "http://a.example:81/other"),
        ("other", "http://a.example:81/dir/other"),
        ("../up?x=1", "http://a.example:81/up?x=1"),
        ("//b.example/x", "http://b.example/x"),
        ("https://c.example/", "https://c.example/"),
        ("http://0x7f000001/", "http://127.0.0.1/"),
        ("ftp://d.example/", "ftp://d.example/"),
    ],
)
def test_redirect_locations_resolve_against_the_current_url(location: str, expected: str) -> None:
    assert redirect_url(location, "http://a.example:81/dir/page?q") == expected


@pytest.mark.parametrize("location", ["http://", "http://[::1", "https://exa mple/"])
def test_unresolvable_redirect_locations(location: str) -> None:
    with pytest.raises(FetchError) as caught:
        redirect_url(location, "http://a.example/")
    assert (caught.value.status, caught.value.message) == (502, "fetch: invalid redirect location")


def test_non_string_values_are_invalid_urls() -> None:
    # Pipelines hand JSON values through; a number is not a URL.
    with pytest.raises(FetchError, match=r"^fetch: invalid URL$"):
        parse_target(5)  # type: ignore[arg-type]


def test_a_latin1_location_is_read_as_latin1() -> None:
    """The raw header bytes `/im\\xe9`, as aiohttp hands them over (surrogate-escaped)."""
    location = b"/im\xe9?x=\xff".decode("utf-8", "surrogateescape")
    assert redirect_url(location, "http://a.example/dir/") == "http://a.example/im%C3%A9?x=%C3%BF"
    assert redirect_url("/im\u00e9", "http://a.example/") == "http://a.example/im%C3%A9"
