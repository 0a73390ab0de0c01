"""Caching with signed URLs (caching.md with access.md): `sig` and `expires` are in no ETag
or cache key, and a signed `expires` caps `max-age`/`s-maxage` per request — for cache hits
and 304s too."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from tests.access_support import FAR_FUTURE, KEYS, TOKEN, signed
from tests.caching_support import JPEG, assert_not_modified, fetching_server
from tests.fetch_origin import Origin, Resource

MAX_AGE = re.compile(r"max-age=(\d+)")


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    args = ("--signing-keys", KEYS, "--api-tokens", TOKEN, "--result-cache-size", "10000000")
    with fetching_server(*args, "--cache-control", "public, max-age=600, s-maxage=900") as (
        _,
        running,
    ):
        yield running


def target(url: str, expires: int | None = None, width: int = 90) -> str:
    query = f"/transform?url={quote(url, safe='')}&width={width}"
    return signed(query if expires is None else f"{query}&expires={expires}")


def test_signature_and_expiry_are_not_part_of_the_etag_or_the_cache_key(
    client: httpx.Client, origin: Origin
) -> None:
    url = origin.put("signed", Resource(JPEG, '"s"'))
    origin.reset()
    first = client.get(target(url))
    assert first.status_code == 200, first.text
    assert first.headers["x-cache"] == "MISS"
    for other in (target(url, FAR_FUTURE), target(url, FAR_FUTURE - 1)):
        again = client.get(other)
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["x-cache"] == "HIT"  # the same entry, whatever the signature
    token = client.get(
        f"/transform?url={quote(url, safe='')}&width=90",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert token.headers["etag"] == first.headers["etag"]
    assert len(origin.requests_for("/res/signed")) == 1


def test_expires_caps_max_age_and_s_maxage_per_request(
    client: httpx.Client, origin: Origin
) -> None:
    url = origin.put("capped", Resource(JPEG, '"c"'))
    unsigned_expiry = client.get(target(url))
    assert unsigned_expiry.headers["cache-control"] == "public, max-age=600, s-maxage=900"
    expires = int(time.time()) + 120
    response = client.get(target(url, expires))
    assert response.headers["x-cache"] == "HIT"  # the cached entry, with this request's cap
    left = int(MAX_AGE.search(response.headers["cache-control"]).group(1))  # type: ignore[union-attr]
    assert 0 < left <= 120
    assert response.headers["cache-control"] == f"public, max-age={left}, s-maxage={left}"
    etag = response.headers["etag"]
    not_modified = client.get(target(url, expires), headers={"If-None-Match": etag})
    assert_not_modified(not_modified, etag)
    assert "s-maxage=" in not_modified.headers["cache-control"]
    assert int(MAX_AGE.search(not_modified.headers["cache-control"]).group(1)) <= left  # type: ignore[union-attr]
    # A far expiry leaves the configured values alone.
    far = client.get(target(url, FAR_FUTURE))
    assert far.headers["cache-control"] == "public, max-age=600, s-maxage=900"


def test_a_missing_max_age_is_added_for_a_signed_expiry(origin: Origin) -> None:
    url = origin.put("added", Resource(JPEG))
    with fetching_server("--signing-keys", KEYS, "--cache-control", "public") as (_, client):
        expires = int(time.time()) + 300
        response = client.get(target(url, expires))
        assert response.status_code == 200
        cache_control = response.headers["cache-control"]
        assert re.fullmatch(r"public, max-age=\d+", cache_control)
        assert 0 < int(cache_control.rsplit("=", 1)[1]) <= 300
        assert client.get(target(url)).headers["cache-control"] == "public"
