"""The in-memory result cache end to end (caching.md, "Result cache"; "Fetching with origin
validators"): hits without the origin, per-request headers on hits, TTL expiry and
revalidation with the origin's validators, errors never cached, the size bound."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.caching_support import (
    JPEG,
    MODIFIED,
    PNG_BYTES,
    assert_not_modified,
    fetching_server,
)
from tests.fetch_origin import Origin, Resource
from tests.serverproc import CORPUS
from tests.waiting import wait_until

SIZE = 40_000  # entries up to 5000 bytes are kept


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with fetching_server("--result-cache-size", str(SIZE)) as (_, running):
        yield running


@pytest.fixture(scope="module")
def short_ttl() -> Iterator[httpx.Client]:
    """TTL 1 s: expiry is awaited by polling, never by sleeping for it."""
    args = ("--result-cache-size", str(SIZE), "--result-cache-ttl", "1")
    with fetching_server(*args) as (_, running):
        yield running


def get(
    client: httpx.Client, url: str, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    """GET /transform of `url` at width 40 (plus `params`)."""
    return client.get("/transform", params={"url": url, "width": "40", **params}, headers=headers)


def test_the_second_request_is_a_hit_without_the_origin(
    client: httpx.Client, origin: Origin
) -> None:
    url = origin.put("hit", Resource(JPEG, '"h"', MODIFIED))
    first = get(client, url, greyscale="true", bogus="1")
    assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
    second = get(client, url, greyscale="true")
    assert second.headers["x-cache"] == "HIT"
    assert second.content == first.content
    for name in ("etag", "last-modified", "cache-control", "content-type", "x-image-width"):
        assert second.headers[name] == first.headers[name]
    # Per request: the warnings of this request's own parameters, its own timing.
    assert first.headers["x-imaged-warnings"] == "bogus: unknown parameter"
    assert "x-imaged-warnings" not in second.headers
    assert int(second.headers["x-response-time-ms"]) >= 0
    head = client.head("/transform", params={"url": url, "width": "40", "greyscale": "true"})
    assert head.headers["x-cache"] == "HIT" and head.content == b""
    assert len(origin.requests_for("/res/hit")) == 1


def test_if_none_match_is_answered_from_the_cache(client: httpx.Client, origin: Origin) -> None:
    url = origin.put("inm", Resource(JPEG, '"i"'))
    etag = get(client, url).headers["etag"]
    response = get(client, url, {"If-None-Match": etag})
    assert_not_modified(response, etag)
    assert response.headers["x-cache"] == "HIT"
    assert len(origin.requests_for("/res/inm")) == 1


def test_other_options_are_other_entries(client: httpx.Client, origin: Origin) -> None:
    url = origin.put("options", Resource(JPEG))
    assert get(client, url).headers["x-cache"] == "MISS"
    assert get(client, url, width="41").headers["x-cache"] == "MISS"
    assert get(client, url, format="webp").headers["x-cache"] == "MISS"
    assert get(client, url, format="jpg").headers["x-cache"] == "HIT"  # jpg is jpeg
    meta = client.get("/metadata", params={"url": url})
    assert meta.headers["x-cache"] == "MISS"
    assert client.get("/metadata", params={"url": url}).headers["x-cache"] == "HIT"
    assert len(origin.requests_for("/res/options")) == 4


def test_errors_are_never_cached(client: httpx.Client, origin: Origin) -> None:
    url = origin.url("/res/later")
    missing = get(client, url)
    assert missing.status_code == 404 and missing.text == "fetch: not found"
    assert missing.headers["x-cache"] == "MISS"
    assert missing.headers["cache-control"] == "no-store"
    origin.put("later", Resource(b"not an image yet"))
    assert get(client, url).status_code == 400
    origin.put("later", Resource(JPEG))
    assert get(client, url).headers["x-cache"] == "MISS"
    assert get(client, url).headers["x-cache"] == "HIT"
    assert len(origin.requests_for("/res/later")) == 3


def test_an_entry_over_an_eighth_is_not_kept(client: httpx.Client, origin: Origin) -> None:
    url = origin.put("big", Resource(JPEG))
    big = get(client, url, width="400")
    assert len(big.content) > SIZE // 8
    assert get(client, url, width="400").headers["x-cache"] == "MISS"
    assert len(origin.requests_for("/res/big")) == 2


def test_the_least_recently_used_entry_goes_when_the_cache_is_full(
    client: httpx.Client, origin: Origin
) -> None:
    url = origin.put("lru", Resource(PNG_BYTES))
    stored = 0
    width = 30
    first = get(client, url, width=str(width), format="webp")
    assert first.headers["x-cache"] == "MISS" and len(first.content) <= SIZE // 8
    stored += len(first.content)
    while stored <= SIZE:  # fill the cache past its size: the first entry has to go
        width += 1
        response = get(client, url, width=str(width), format="webp")
        assert response.headers["x-cache"] == "MISS"
        stored += len(response.content)
    assert get(client, url, width=str(width), format="webp").headers["x-cache"] == "HIT"
    assert get(client, url, width="30", format="webp").headers["x-cache"] == "MISS"


def test_after_the_ttl_an_origin_304_renews_the_entry(
    short_ttl: httpx.Client, origin: Origin
) -> None:
    url = origin.put("ttl", Resource(JPEG, '"t-1"', MODIFIED))
    first = get(short_ttl, url)
    assert first.headers["x-cache"] == "MISS"
    not_modified_before = origin.not_modified

    def revalidated() -> httpx.Response | None:
        response = get(short_ttl, url)  # hits until the entry expires
        return response if len(origin.requests_for("/res/ttl")) == 2 else None

    renewed = wait_until(revalidated, "the entry to expire and be revalidated", timeout=20)
    conditional = origin.requests_for("/res/ttl")[1]
    assert conditional.headers["If-None-Match"] == '"t-1"'
    assert conditional.headers["If-Modified-Since"] == MODIFIED
    assert origin.requests_for("/res/ttl")[0].headers.get("If-None-Match") is None
    assert origin.not_modified == not_modified_before + 1  # no download
    assert renewed.status_code == 200 and renewed.headers["x-cache"] == "MISS"
    assert renewed.content == first.content
    assert renewed.headers["etag"] == first.headers["etag"]
    assert get(short_ttl, url).headers["x-cache"] == "HIT"


def test_after_the_ttl_a_changed_origin_gives_the_new_image(
    short_ttl: httpx.Client, origin: Origin
) -> None:
    url = origin.put("changes", Resource(JPEG, '"c-1"'))
    first = get(short_ttl, url, format="png")
    origin.put("changes", Resource(PNG_BYTES, '"c-2"'))

    def changed() -> httpx.Response | None:
        response = get(short_ttl, url, format="png")
        return response if response.content != first.content else None

    new = wait_until(changed, "the new image after the TTL", timeout=20)
    assert new.headers["etag"] != first.headers["etag"]
    assert new.headers["x-cache"] == "MISS"
    assert origin.requests_for("/res/changes")[1].headers["If-None-Match"] == '"c-1"'


def test_without_origin_validators_the_source_is_fetched_again(
    short_ttl: httpx.Client, origin: Origin
) -> None:
    url = origin.put("plain", Resource(JPEG))
    first = get(short_ttl, url)

    def refetched() -> httpx.Response | None:
        response = get(short_ttl, url)
        return response if len(origin.requests_for("/res/plain")) == 2 else None

    again = wait_until(refetched, "a second fetch after the TTL", timeout=20)
    assert "If-None-Match" not in origin.requests_for("/res/plain")[1].headers
    assert "If-Modified-Since" not in origin.requests_for("/res/plain")[1].headers
    assert again.headers["etag"] == first.headers["etag"]


def test_what_only_the_image_tells_is_judged_per_request(
    client: httpx.Client, origin: Origin
) -> None:
    """An animation into a still format: lenient requests get the warning, strict ones the
    400 — from the same cached render (animation.md)."""
    url = origin.put("animated", Resource((CORPUS / "gif-animated-10f.gif").read_bytes()))
    params = {"animated": "true", "format": "jpeg"}
    lenient = get(client, url, **params)
    assert lenient.headers["x-cache"] == "MISS"
    warning = "animated: jpeg output cannot be animated; first frame used"
    assert lenient.headers["x-imaged-warnings"] == warning
    strict = get(client, url, strict="1", **params)
    assert strict.status_code == 400
    assert strict.text.startswith("Invalid parameters:\n- animated: jpeg output cannot")
    assert strict.headers["cache-control"] == "no-store" and "etag" not in strict.headers
    again = get(client, url, **params)
    assert again.headers["x-cache"] == "HIT"
    assert again.headers["x-imaged-warnings"] == warning
    assert len(origin.requests_for("/res/animated")) == 1


def test_the_startup_log_names_the_cache(origin: Origin) -> None:
    with fetching_server("--result-cache-size", "1000", "--result-cache-ttl", "5") as (proc, _):
        assert "INFO result cache size=1000 ttl=5" in proc.log()
    with fetching_server() as (proc, client):
        assert "result cache" not in proc.log()
        response = client.get("/transform", params={"url": origin.put("off", Resource(JPEG))})
        assert response.status_code == 200 and "x-cache" not in response.headers
