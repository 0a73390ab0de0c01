"""Request coalescing end to end (caching.md, "Request coalescing"): concurrent identical GETs
of a slow origin share one fetch; errors are shared and never reused; a client that goes away
does not cancel the work of the others.

The origin holds `/res/<name>` at a gate until the test opens it. Before opening it, every
request must have joined the flight: each client socket is seen read by the server
(`read_by_peer`), then one more request (`/healthz`) is answered on another connection —
the event loop handles requests in arrival order and a GET joins its flight before its
first suspension, so by then every earlier request has joined.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from tests.caching_support import JPEG, assert_not_modified, fetching_server
from tests.fetch_origin import Origin, Resource
from tests.serverkit import Response, connect, read_by_peer, read_response
from tests.serverproc import ServerProcess
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ServerProcess, httpx.Client]]:
    with fetching_server("--result-cache-size", "10000000") as running:
        yield running


def send(proc: ServerProcess, params: dict[str, str], headers: str = "") -> socket.socket:
    sock = connect((proc.host, proc.port))
    target = "/transform?" + urlencode(params)
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    return sock


def all_joined(client: httpx.Client, origin: Origin, socks: list[socket.socket]) -> None:
    """Every request on `socks` has joined the one flight held at the origin."""
    wait_until(lambda: origin.held == 1, "the first request to reach the origin")
    wait_until(lambda: all(read_by_peer(s) for s in socks), "the server to read every request")
    assert client.get("/healthz").status_code == 200  # the barrier: see the module doc


def answers(socks: list[socket.socket]) -> list[Response]:
    try:
        return [read_response(s) for s in socks]
    finally:
        for s in socks:
            s.close()


def test_eight_identical_concurrent_gets_share_one_fetch(
    server: tuple[ServerProcess, httpx.Client], origin: Origin
) -> None:
    proc, client = server
    url = origin.put("burst", Resource(JPEG, '"b"'))
    origin.hold("burst")
    socks = [send(proc, {"url": url, "width": "64"}) for _ in range(8)]
    all_joined(client, origin, socks)
    origin.release("burst")
    responses = answers(socks)
    assert [r.status for r in responses] == [200] * 8
    assert len({r.body for r in responses}) == 1 and responses[0].body[:2] == b"\xff\xd8"
    assert len({r.headers["ETag"] for r in responses}) == 1
    assert all(r.headers["X-Response-Time-Ms"].isdigit() for r in responses)
    assert len(origin.requests_for("/res/burst")) == 1
    # The shared work was stored once: the next request is a hit.
    assert client.get("/transform", params={"url": url, "width": "64"}).headers["x-cache"] == "HIT"


def test_a_shared_error_reaches_every_waiter_and_is_not_kept(
    server: tuple[ServerProcess, httpx.Client], origin: Origin
) -> None:
    proc, client = server
    url = origin.url("/res/absent")
    origin.hold("absent")
    socks = [send(proc, {"url": url}) for _ in range(4)]
    all_joined(client, origin, socks)
    origin.release("absent")
    responses = answers(socks)
    assert [(r.status, r.text) for r in responses] == [(404, "fetch: not found")] * 4
    assert all(r.headers["Cache-Control"] == "no-store" for r in responses)
    assert len(origin.requests_for("/res/absent")) == 1
    assert client.get("/transform", params={"url": url}).status_code == 404
    assert len(origin.requests_for("/res/absent")) == 2  # asked again, not reused


def test_a_client_that_goes_away_does_not_cancel_the_others(
    server: tuple[ServerProcess, httpx.Client], origin: Origin
) -> None:
    proc, client = server
    url = origin.put("leaver", Resource(JPEG, '"l"'))
    origin.hold("leaver")
    creator = send(proc, {"url": url, "width": "50"})  # it starts the shared work …
    waiter = send(proc, {"url": url, "width": "50"})
    all_joined(client, origin, [creator, waiter])
    creator.close()  # … and leaves before it is done
    origin.release("leaver")
    (response,) = answers([waiter])
    assert response.status == 200 and response.headers["X-Image-Width"] == "50"
    assert len(origin.requests_for("/res/leaver")) == 1


def test_the_work_finishes_when_its_only_client_has_gone(
    server: tuple[ServerProcess, httpx.Client], origin: Origin
) -> None:
    proc, client = server
    url = origin.put("alone", Resource(JPEG, '"a"'))
    origin.hold("alone")
    sock = send(proc, {"url": url, "width": "48"})
    all_joined(client, origin, [sock])
    sock.close()
    origin.release("alone")

    def stored() -> bool:
        response = client.get("/transform", params={"url": url, "width": "48"})
        return response.headers["x-cache"] == "HIT"

    # Until the shared work is done a new request joins it (MISS); then it is a hit.
    wait_until(stored, "the abandoned work to finish and be stored")
    assert len(origin.requests_for("/res/alone")) == 1


def test_a_304_and_a_200_share_the_fetch(
    server: tuple[ServerProcess, httpx.Client], origin: Origin
) -> None:
    proc, client = server
    url = origin.put("mixed", Resource(JPEG, '"m"'))
    with fetching_server() as (_, uncached):  # no result cache: both must fetch
        etag = uncached.get("/transform", params={"url": url, "width": "30"}).headers["etag"]
    origin.reset()
    origin.hold("mixed")
    params = {"url": url, "width": "30"}
    socks = [send(proc, params, f"If-None-Match: {etag}\r\n"), send(proc, params)]
    all_joined(client, origin, socks)
    origin.release("mixed")
    not_modified, ok = answers(socks)
    assert not_modified.status == 304 and not_modified.headers["ETag"] == etag
    assert not_modified.body == b""
    assert ok.status == 200 and ok.headers["ETag"] == etag
    assert len(origin.requests_for("/res/mixed")) == 1


def test_other_options_are_other_work(
    server: tuple[ServerProcess, httpx.Client], origin: Origin
) -> None:
    proc, client = server
    url = origin.put("widths", Resource(JPEG))
    socks = [send(proc, {"url": url, "width": w}) for w in ("20", "21")]
    responses = answers(socks)
    assert [r.headers["X-Image-Width"] for r in responses] == ["20", "21"]
    assert len(origin.requests_for("/res/widths")) == 2
    assert_not_modified(
        client.get(
            "/transform",
            params={"url": url, "width": "20"},
            headers={"If-None-Match": responses[0].headers["ETag"]},
        ),
        responses[0].headers["ETag"],
    )
