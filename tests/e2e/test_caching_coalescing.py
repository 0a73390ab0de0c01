"""Request coalescing end to end (caching.md, "Request coalescing"): concurrent identical GETs
of a slow origin share one fetch; errors are shared and never reused; a client that goes away
does not cancel the work of the others.

The origin holds `/res/<name>` at a gate until the test opens it. Before opening it, every
request must have joined the flight: the server's `imaged_coalesced_requests_total` says how
many joined the first, so the test waits for exactly that.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
from tests.caching_support import JPEG, assert_not_modified, fetching_server
from tests.fetch_origin import Origin, Resource
from tests.scrape import Samples, delta, scrape
from tests.serverkit import Response, connect, free_port, read_response
from tests.serverproc import ServerProcess
from tests.waiting import wait_until

COALESCED = "imaged_coalesced_requests_total"


@dataclass
class Server:
    proc: ServerProcess
    client: httpx.Client
    metrics: str  # the metrics listener's base URL

    def send(self, params: dict[str, str], headers: str = "") -> socket.socket:
        sock = connect((self.proc.host, self.proc.port))
        target = "/transform?" + urlencode(params)
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        return sock

    def all_joined(self, origin: Origin, before: Samples, count: int) -> None:
        """`count` requests are in one flight, held at the origin."""
        wait_until(lambda: origin.held == 1, "the first request to reach the origin")
        wait_until(
            lambda: delta(before, scrape(self.metrics), COALESCED) == count - 1,
            f"{count - 1} requests to join the first",
        )


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    port = free_port()
    args = ("--result-cache-size", "10000000", "--metrics-listen", f"127.0.0.1:{port}")
    with fetching_server(*args) as (proc, client):
        yield Server(proc, client, f"http://127.0.0.1:{port}")


def answers(socks: list[socket.socket]) -> list[Response]:
    try:
        return [read_response(s) for s in socks]
    finally:
        for s in socks:
            s.close()


def test_eight_identical_concurrent_gets_share_one_fetch(server: Server, origin: Origin) -> None:
    client = server.client
    before = scrape(server.metrics)
    url = origin.put("burst", Resource(JPEG, '"b"'))
    origin.hold("burst")
    socks = [server.send({"url": url, "width": "64"}) for _ in range(8)]
    server.all_joined(origin, before, len(socks))
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
    server: Server, origin: Origin
) -> None:
    client = server.client
    before = scrape(server.metrics)
    url = origin.url("/res/absent")
    origin.hold("absent")
    socks = [server.send({"url": url}) for _ in range(4)]
    server.all_joined(origin, before, len(socks))
    origin.release("absent")
    responses = answers(socks)
    assert [(r.status, r.text) for r in responses] == [(404, "fetch: not found")] * 4
    assert all(r.headers["Cache-Control"] == "no-store" for r in responses)
    assert len(origin.requests_for("/res/absent")) == 1
    assert client.get("/transform", params={"url": url}).status_code == 404
    assert len(origin.requests_for("/res/absent")) == 2  # asked again, not reused


def test_a_client_that_goes_away_does_not_cancel_the_others(server: Server, origin: Origin) -> None:
    before = scrape(server.metrics)
    url = origin.put("leaver", Resource(JPEG, '"l"'))
    origin.hold("leaver")
    creator = server.send({"url": url, "width": "50"})  # it starts the shared work …
    waiter = server.send({"url": url, "width": "50"})
    server.all_joined(origin, before, 2)
    creator.close()  # … and leaves before it is done
    origin.release("leaver")
    (response,) = answers([waiter])
    assert response.status == 200 and response.headers["X-Image-Width"] == "50"
    assert len(origin.requests_for("/res/leaver")) == 1


def test_the_work_finishes_when_its_only_client_has_gone(server: Server, origin: Origin) -> None:
    client = server.client
    before = scrape(server.metrics)
    url = origin.put("alone", Resource(JPEG, '"a"'))
    origin.hold("alone")
    sock = server.send({"url": url, "width": "48"})
    server.all_joined(origin, before, 1)
    sock.close()
    origin.release("alone")

    def stored() -> bool:
        response = client.get("/transform", params={"url": url, "width": "48"})
        return response.headers["x-cache"] == "HIT"

    # Until the shared work is done a new request joins it (MISS); then it is a hit.
    wait_until(stored, "the abandoned work to finish and be stored")
    assert len(origin.requests_for("/res/alone")) == 1


def test_a_304_and_a_200_share_the_fetch(server: Server, origin: Origin) -> None:
    before = scrape(server.metrics)
    url = origin.put("mixed", Resource(JPEG, '"m"'))
    with fetching_server() as (_, uncached):  # no result cache: both must fetch
        etag = uncached.get("/transform", params={"url": url, "width": "30"}).headers["etag"]
    origin.reset()
    origin.hold("mixed")
    params = {"url": url, "width": "30"}
    socks = [server.send(params, f"If-None-Match: {etag}\r\n"), server.send(params)]
    server.all_joined(origin, before, len(socks))
    origin.release("mixed")
    not_modified, ok = answers(socks)
    assert not_modified.status == 304 and not_modified.headers["ETag"] == etag
    assert not_modified.body == b""
    assert ok.status == 200 and ok.headers["ETag"] == etag
    assert len(origin.requests_for("/res/mixed")) == 1


def test_other_options_are_other_work(server: Server, origin: Origin) -> None:
    client = server.client
    before = scrape(server.metrics)
    url = origin.put("widths", Resource(JPEG))
    socks = [server.send({"url": url, "width": w}) for w in ("20", "21")]
    responses = answers(socks)
    assert [r.headers["X-Image-Width"] for r in responses] == ["20", "21"]
    assert len(origin.requests_for("/res/widths")) == 2
    assert delta(before, scrape(server.metrics), COALESCED) == 0
    assert_not_modified(
        client.get(
            "/transform",
            params={"url": url, "width": "20"},
            headers={"If-None-Match": responses[0].headers["ETag"]},
        ),
        responses[0].headers["ETag"],
    )
