"""What the caching layer does, read from `/metrics` (caching.md, "Metrics"): a 304 and a cache
hit do no image operation; coalesced requests do one; every image GET counts once in
`imaged_cache_requests_total{result}`; per-request headers (request ids) stay per request."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.caching_support import JPEG, MODIFIED, assert_not_modified, fetching_server
from tests.fetch_origin import Origin, Resource
from tests.scrape import Samples, delta, scrape
from tests.serverkit import free_port
from tests.waiting import wait_until

OPERATIONS = "imaged_image_operations_total"
CACHE = "imaged_cache_requests_total"
COALESCED = "imaged_coalesced_requests_total"
FETCHES = "imaged_fetch_requests_total"


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


def metered(*args: str) -> Iterator[tuple[httpx.Client, str]]:
    port = free_port()
    with fetching_server("--metrics-listen", f"127.0.0.1:{port}", *args) as (_, client):
        yield client, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def uncached() -> Iterator[tuple[httpx.Client, str]]:
    yield from metered()


@pytest.fixture(scope="module")
def cached() -> Iterator[tuple[httpx.Client, str]]:
    yield from metered("--result-cache-size", "10000000", "--result-cache-ttl", "1")


def operations(before: Samples, after: Samples, operation: str, fmt: str) -> float:
    return delta(before, after, OPERATIONS, operation=operation, format=fmt, outcome="ok")


def results(before: Samples, after: Samples) -> dict[str, float]:
    kinds = ("hit", "miss", "revalidated", "not_modified")
    return {k: delta(before, after, CACHE, result=k) for k in kinds}


def test_a_304_does_no_image_work(uncached: tuple[httpx.Client, str], origin: Origin) -> None:
    client, metrics = uncached
    url = origin.put("no-work", Resource(JPEG, '"n"', MODIFIED))
    params = {"url": url, "width": "100", "format": "webp"}
    first = scrape(metrics)
    ok = client.get("/transform", params=params)
    meta = client.get("/metadata", params={"url": url})
    second = scrape(metrics)
    assert operations(first, second, "transform", "webp") == 1
    assert operations(first, second, "metadata", "jpeg") == 1
    inm = {"If-None-Match": ok.headers["etag"]}
    assert_not_modified(client.get("/transform", params=params, headers=inm), ok.headers["etag"])
    assert_not_modified(client.head("/transform", params=params, headers=inm), ok.headers["etag"])
    since = {"If-Modified-Since": MODIFIED}
    assert client.get("/metadata", params={"url": url}, headers=since).status_code == 304
    third = scrape(metrics)
    assert sum(third.series(OPERATIONS).values()) == sum(second.series(OPERATIONS).values())
    assert delta(second, third, FETCHES, outcome="ok") == 3  # the sources were fetched
    assert results(first, second) == {"hit": 0, "miss": 2, "revalidated": 0, "not_modified": 0}
    assert results(second, third) == {"hit": 0, "miss": 0, "revalidated": 0, "not_modified": 3}
    assert meta.status_code == 200


def test_coalesced_requests_do_one_operation(
    uncached: tuple[httpx.Client, str], origin: Origin
) -> None:
    client, metrics = uncached
    url = origin.put("together", Resource(JPEG, '"t"'))
    origin.hold("together")
    before = scrape(metrics)

    def get(index: int) -> httpx.Response:
        headers = {"X-Request-Id": f"burst-{index}"}
        return client.get("/transform", params={"url": url, "width": "70"}, headers=headers)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(get, i) for i in range(8)]
        # Deterministic: the 8 have joined once the counter says 7 joined the first.
        wait_until(
            lambda: delta(before, scrape(metrics), COALESCED) == 7, "7 requests to join the first"
        )
        origin.release("together")
        responses = [f.result() for f in futures]
    after = scrape(metrics)
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert [r.headers["x-request-id"] for r in responses] == [f"burst-{i}" for i in range(8)]
    assert operations(before, after, "transform", "jpeg") == 1
    assert delta(before, after, FETCHES, outcome="ok") == 1
    assert delta(before, after, COALESCED) == 7
    assert results(before, after)["miss"] == 8
    (seen,) = origin.requests_for("/res/together")
    sent = {name.lower(): value for name, value in seen.headers.items()}
    assert sent["x-request-id"].startswith("burst-")  # the id of the one that started it


def test_hits_revalidations_and_304s_are_counted(
    cached: tuple[httpx.Client, str], origin: Origin
) -> None:
    client, metrics = cached
    url = origin.put("counted", Resource(JPEG, '"c"', MODIFIED))
    params = {"url": url, "width": "60"}
    start = scrape(metrics)
    first = client.get("/transform", params=params, headers={"X-Request-Id": "one"})
    hit = client.get("/transform", params=params, headers={"X-Request-Id": "two"})
    after_hit = scrape(metrics)
    assert (first.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert (first.headers["x-request-id"], hit.headers["x-request-id"]) == ("one", "two")
    assert results(start, after_hit) == {"hit": 1, "miss": 1, "revalidated": 0, "not_modified": 0}
    assert operations(start, after_hit, "transform", "jpeg") == 1
    assert delta(start, after_hit, FETCHES, outcome="ok") == 1

    def revalidated() -> bool:  # hits until the 1 s TTL has passed, then the revalidation
        client.get("/transform", params=params)
        return len(origin.requests_for("/res/counted")) == 2

    wait_until(revalidated, "the entry to be revalidated")
    etag = first.headers["etag"]
    assert_not_modified(
        client.get("/transform", params=params, headers={"If-None-Match": etag}), etag
    )
    end = scrape(metrics)
    counted = results(after_hit, end)
    assert counted["revalidated"] == 1 and counted["not_modified"] == 1 and counted["miss"] == 0
    assert operations(after_hit, end, "transform", "jpeg") == 0  # renewed, never re-rendered
    assert delta(after_hit, end, FETCHES, outcome="ok") == 1  # the conditional fetch
