"""Hostile query strings: caps on parameter count and length, header injection, raw bytes."""

from __future__ import annotations

import httpx
import pytest
from tests.hardening import TEXT, encode, raw_request, synthetic
from tests.serverproc import ServerProcess

from imaged.params.query import MAX_PARAMS, MAX_QUERY_LENGTH

PNG = encode(synthetic(32, 24), ".png")
ROUTES = ("/transform", "/metadata")


def query_of(count: int, key: str = "p") -> str:
    return "&".join(f"{key}{i}=1" for i in range(count))


@pytest.mark.parametrize("route", ROUTES)
def test_parameter_count_at_the_cap_is_served(client: httpx.Client, route: str) -> None:
    r = client.put(f"{route}?{query_of(MAX_PARAMS)}", content=PNG)
    assert r.status_code == 200, r.text
    assert r.headers["x-imaged-warnings"].count("unknown parameter") == MAX_PARAMS


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("strict", ["", "&strict=1"])
def test_parameter_count_over_the_cap_is_400(client: httpx.Client, route: str, strict: str) -> None:
    r = client.put(f"{route}?{query_of(MAX_PARAMS + 1)}{strict}", content=PNG)
    assert r.status_code == 400
    assert r.text == f"too many query parameters (limit {MAX_PARAMS})"
    assert r.headers["content-type"] == TEXT
    assert "x-imaged-warnings" not in r.headers


def test_repeated_key_counts_every_pair(client: httpx.Client) -> None:
    r = client.put("/transform?" + "&".join(["width=1"] * (MAX_PARAMS + 1)), content=PNG)
    assert r.status_code == 400
    assert r.text == f"too many query parameters (limit {MAX_PARAMS})"


def test_empty_pairs_are_not_parameters(client: httpx.Client) -> None:
    r = client.put("/transform?" + "&" * 3000 + "width=8", content=PNG)
    assert r.status_code == 200, r.text
    assert r.headers["x-image-width"] == "8"


@pytest.mark.parametrize("route", ROUTES)
def test_query_length_cap(server: ServerProcess, route: str) -> None:
    at_cap = "x=" + "a" * (MAX_QUERY_LENGTH - 2)
    r = raw_request(server.port, "PUT", f"{route}?{at_cap}", PNG)
    assert r.status == 200, r.text
    r = raw_request(server.port, "PUT", f"{route}?{at_cap}a", PNG)
    assert r.status == 414
    assert r.text == f"query string exceeds the limit of {MAX_QUERY_LENGTH} characters"
    assert r.header("content-type") == TEXT


def test_request_line_over_the_server_limit_is_a_4xx_not_a_reset(server: ServerProcess) -> None:
    r = raw_request(server.port, "PUT", "/transform?x=" + "a" * 20000, PNG)
    assert 400 <= r.status < 500
    assert raw_request(server.port, "GET", "/healthz").status == 200


def test_crlf_in_a_key_cannot_inject_a_header(server: ServerProcess) -> None:
    r = raw_request(server.port, "PUT", "/transform?%0D%0AX-Injected:%201=1&width=4", PNG)
    assert r.status == 200
    assert r.header("x-injected") is None
    assert r.header("x-imaged-warnings") == "%0D%0AX-Injected: 1: unknown parameter"


def test_long_hostile_values_stay_a_legal_header(server: ServerProcess) -> None:
    nasty = "%00%0A%0D%7F%C3%A9%E2%82%AC%FF%zz%" * 40
    query = f"fit={nasty}&kernel={nasty}&position={nasty}&preset={nasty}&{nasty}=1"
    r = raw_request(server.port, "PUT", f"/transform?{query}", PNG)
    assert r.status == 200
    header = r.header("x-imaged-warnings")
    assert header is not None
    assert all(" " <= c <= "~" for c in header)
    assert header.count("unknown value") == 4


def test_raw_non_ascii_bytes_in_the_target(server: ServerProcess) -> None:
    """Bytes that are not legal in a request target: a 4xx or a sanitised warning."""
    for target in (
        b"/transform?fit=\xc3\xa9",
        b"/transform?\xff\xfe=1",
        b"/transform?fit=\x80\x81",
        b"/metadata?exif=\xe2\x82",
    ):
        r = raw_request(server.port, "PUT", target, PNG)
        assert r.status in (200, 400), (target, r.status, r.text)
        if r.status == 200:
            header = r.header("x-imaged-warnings") or ""
            assert all(" " <= c <= "~" for c in header)
    assert raw_request(server.port, "GET", "/healthz").status == 200
