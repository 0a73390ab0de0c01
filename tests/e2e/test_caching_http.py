"""Caching headers, ETags and conditional requests on the GET routes, end to end against the
loopback origin, result cache off (caching.md: "Response headers", "Conditional requests")."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.caching_support import (
    DEFAULT_CACHE_CONTROL,
    ETAG,
    JPEG,
    LATER,
    MODIFIED,
    PNG_BYTES,
    assert_not_modified,
    fetching_server,
)
from tests.fetch_origin import Origin, Resource


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with fetching_server("--dimension-limit", "500") as (_, running):
        yield running


@pytest.fixture
def url(origin: Origin, request: pytest.FixtureRequest) -> str:
    """A fresh resource per test: the JPEG with an origin ETag and Last-Modified."""
    return origin.put(request.node.name, Resource(JPEG, '"origin-v1"', MODIFIED))


def etag_of(client: httpx.Client, url: str, **params: str) -> str:
    response = client.get("/transform", params={"url": url, **params})
    assert response.status_code == 200, response.text
    return response.headers["etag"]


# --- response headers ---------------------------------------------------------------------


def test_a_200_carries_cache_control_a_strong_etag_and_the_origin_last_modified(
    client: httpx.Client, url: str
) -> None:
    response = client.get("/transform", params={"url": url, "width": "100"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == DEFAULT_CACHE_CONTROL
    assert ETAG.fullmatch(response.headers["etag"])
    assert response.headers["last-modified"] == MODIFIED
    assert "vary" not in response.headers
    assert "x-cache" not in response.headers  # the result cache is off
    meta = client.get("/metadata", params={"url": url})
    assert meta.status_code == 200
    assert meta.headers["cache-control"] == DEFAULT_CACHE_CONTROL
    assert ETAG.fullmatch(meta.headers["etag"])
    assert meta.headers["etag"] != response.headers["etag"]


@pytest.mark.parametrize("sent", [None, "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC"])
def test_no_last_modified_without_a_valid_date_from_the_origin(
    client: httpx.Client, origin: Origin, sent: str | None
) -> None:
    url = origin.put(f"nodate-{sent}", Resource(JPEG, '"x"', sent))
    response = client.get("/transform", params={"url": url})
    assert response.status_code == 200
    assert "last-modified" not in response.headers


def test_an_obsolete_date_form_is_sent_on_in_the_preferred_form(
    client: httpx.Client, origin: Origin
) -> None:
    url = origin.put("rfc850", Resource(JPEG, None, "Sunday, 06-Nov-94 08:49:37 GMT"))
    assert client.get("/transform", params={"url": url}).headers["last-modified"] == MODIFIED


def test_vary_accept_only_when_negotiated(client: httpx.Client, url: str) -> None:
    negotiated = client.get(
        "/transform", params={"url": url, "format": "webp,png"}, headers={"Accept": "image/png"}
    )
    assert negotiated.headers["vary"] == "Accept"
    assert negotiated.headers["content-type"] == "image/png"
    assert "vary" not in client.get("/transform", params={"url": url, "format": "png"}).headers


# --- ETags ------------------------------------------------------------------------------


def test_equivalent_requests_have_the_same_etag(client: httpx.Client, url: str) -> None:
    base = etag_of(client, url, width="120", format="jpeg")
    assert etag_of(client, url, width="120", format="jpeg") == base
    assert etag_of(client, url, format="jpg", width="120") == base  # alias, other order
    assert etag_of(client, url, format=" JPEG ", width="120.0") == base
    assert etag_of(client, url, width="120", format="jpeg", bogus="1") == base  # ignored
    # A clamped value equals the limit (--dimension-limit 500).
    assert etag_of(client, url, width="99999") == etag_of(client, url, width="500")


def test_different_output_different_etag(client: httpx.Client, url: str) -> None:
    tags = {
        etag_of(client, url, width="120"),
        etag_of(client, url, width="121"),
        etag_of(client, url, width="120", format="webp"),
        etag_of(client, url, width="120", quality="50"),
        etag_of(client, url, width="120", greyscale="true"),
    }
    assert len(tags) == 5


def test_the_negotiated_format_is_part_of_the_etag(client: httpx.Client, url: str) -> None:
    params = {"url": url, "format": "webp,png"}
    webp = client.get("/transform", params=params, headers={"Accept": "image/webp"})
    png = client.get("/transform", params=params, headers={"Accept": "image/png"})
    assert webp.headers["content-type"] == "image/webp"
    assert png.headers["content-type"] == "image/png"
    assert webp.headers["etag"] != png.headers["etag"]
    # The same format chosen without negotiation is the same output, hence the same tag.
    assert png.headers["etag"] == etag_of(client, url, format="png")


def test_metadata_etags_follow_the_flags(client: httpx.Client, url: str) -> None:
    def tag(**params: str) -> str:
        response = client.get("/metadata", params={"url": url, **params})
        assert response.status_code == 200
        return response.headers["etag"]

    plain = tag()
    assert tag(exif="false") == plain
    assert len({plain, tag(exif="true"), tag(stats="1"), tag(thumbhash="true")}) == 4


def test_the_etag_follows_the_source_bytes_not_the_url(
    client: httpx.Client, origin: Origin
) -> None:
    url = origin.put("changing", Resource(JPEG, '"a"'))
    first = etag_of(client, url, width="64")
    same_bytes_elsewhere = origin.put("changing-copy", Resource(JPEG, '"other"'))
    assert etag_of(client, same_bytes_elsewhere, width="64") == first
    origin.put("changing", Resource(PNG_BYTES, '"a"'))  # new bytes, even under the same tag
    assert etag_of(client, url, width="64") != first


# --- conditional requests -----------------------------------------------------------------


def test_if_none_match_with_the_etag_is_a_304(client: httpx.Client, url: str) -> None:
    params = {"url": url, "width": "100", "format": "webp,png"}
    accept = {"Accept": "image/png"}
    ok = client.get("/transform", params=params, headers=accept)
    etag = ok.headers["etag"]
    for sent in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        response = client.get(
            "/transform", params=params, headers={**accept, "If-None-Match": sent}
        )
        assert_not_modified(response, etag)
        assert response.headers["cache-control"] == DEFAULT_CACHE_CONTROL
        assert response.headers["last-modified"] == MODIFIED
        assert response.headers["vary"] == "Accept"


def test_if_none_match_that_does_not_match_or_is_malformed_is_a_200(
    client: httpx.Client, url: str
) -> None:
    etag = etag_of(client, url)
    for sent in ('"other"', etag.strip('"'), f"{etag} garbage"):
        response = client.get("/transform", params={"url": url}, headers={"If-None-Match": sent})
        assert response.status_code == 200
        assert response.headers["etag"] == etag
        assert response.content[:2] == b"\xff\xd8"


def test_if_modified_since_needs_a_last_modified_and_no_if_none_match(
    client: httpx.Client, url: str, origin: Origin
) -> None:
    etag = etag_of(client, url)
    since = {"If-Modified-Since": LATER}
    assert_not_modified(client.get("/transform", params={"url": url}, headers=since), etag)
    exact = {"If-Modified-Since": MODIFIED}
    assert_not_modified(client.get("/transform", params={"url": url}, headers=exact), etag)
    before = {"If-Modified-Since": "Sat, 05 Nov 1994 08:49:37 GMT"}
    assert client.get("/transform", params={"url": url}, headers=before).status_code == 200
    with_inm = {**since, "If-None-Match": '"other"'}
    assert client.get("/transform", params={"url": url}, headers=with_inm).status_code == 200
    undated = origin.put("undated", Resource(JPEG, '"u"'))
    assert client.get("/transform", params={"url": undated}, headers=since).status_code == 200


def test_metadata_answers_304_too(client: httpx.Client, url: str) -> None:
    ok = client.get("/metadata", params={"url": url, "exif": "true"})
    etag = ok.headers["etag"]
    response = client.get(
        "/metadata", params={"url": url, "exif": "true"}, headers={"If-None-Match": etag}
    )
    assert_not_modified(response, etag)


def test_validation_comes_before_the_304(client: httpx.Client, url: str) -> None:
    etag = etag_of(client, url)
    headers = {"If-None-Match": etag}
    strict = client.get(
        "/transform", params={"url": url, "width": "x", "strict": "1"}, headers=headers
    )
    assert strict.status_code == 400
    assert strict.text.startswith("Invalid parameters:")
    assert client.get("/transform", params={"width": "1"}, headers=headers).status_code == 400


def test_head_is_get_without_the_body_including_304(client: httpx.Client, url: str) -> None:
    params = {"url": url, "width": "80"}
    get = client.get("/transform", params=params)
    head = client.head("/transform", params=params)
    assert head.status_code == 200 and head.content == b""
    for name in ("etag", "cache-control", "last-modified", "content-type", "x-image-width"):
        assert head.headers[name] == get.headers[name], name
    assert int(head.headers["content-length"]) == len(get.content)
    not_modified = client.head(
        "/transform", params=params, headers={"If-None-Match": get.headers["etag"]}
    )
    assert_not_modified(not_modified, get.headers["etag"])
    meta = client.head("/metadata", params={"url": url}, headers={"If-None-Match": "*"})
    assert meta.status_code == 304


# --- errors and PUT -----------------------------------------------------------------------


def test_get_errors_are_no_store_without_an_etag(client: httpx.Client, origin: Origin) -> None:
    cases = [
        ("/transform", {}),  # missing url
        ("/transform", {"url": origin.url("/res/missing")}),  # the origin's 404
        ("/transform", {"url": origin.url("/status/500")}),  # 502
        ("/metadata", {"url": origin.put("text", Resource(b"not an image", '"t"'))}),
        ("/metadata", {"url": origin.url("/status/404"), "exif": "x", "strict": "1"}),
    ]
    for path, params in cases:
        for method in ("GET", "HEAD"):
            headers = {"If-None-Match": '"x"'}
            response = client.request(method, path, params=params, headers=headers)
            assert response.status_code >= 400, (path, params)
            assert response.headers["cache-control"] == "no-store", (path, params)
            assert "etag" not in response.headers
            assert "x-cache" not in response.headers  # the result cache is off


def test_put_responses_have_no_caching_headers(client: httpx.Client) -> None:
    for path in ("/transform", "/metadata"):
        response = client.put(path, content=JPEG, headers={"If-None-Match": "*"})
        assert response.status_code == 200
        assert "etag" not in response.headers
        assert "cache-control" not in response.headers
        assert "x-cache" not in response.headers


def test_cache_control_is_configurable_and_can_be_turned_off(origin: Origin) -> None:
    url = origin.put("configured", Resource(JPEG))
    with fetching_server("--cache-control", "private, max-age=60") as (_, client):
        response = client.get("/transform", params={"url": url})
        assert response.headers["cache-control"] == "private, max-age=60"
    with fetching_server("--cache-control", "") as (_, client):
        response = client.get("/transform", params={"url": url})
        assert response.status_code == 200 and "cache-control" not in response.headers
        assert ETAG.fullmatch(response.headers["etag"])
        assert_not_modified(
            client.get("/transform", params={"url": url}, headers={"If-None-Match": "*"}),
            response.headers["etag"],
        )
