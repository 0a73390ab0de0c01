"""GET /transform and GET /metadata end to end against the loopback origin, with SSRF
protection off (the only way to reach a loopback origin). http-api.md, fetch-and-security.md."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import httpx
import pytest
from tests.fetch_origin import SMALL_JPEG, SMALL_PNG, Origin
from tests.serverproc import CORPUS, ServerProcess, free_port

JPEG = (CORPUS / SMALL_JPEG).read_bytes()
LIMIT = len(JPEG)  # the small server's body limit: exactly the JPEG's size
TOO_BIG = f"fetch: response body size limit of {LIMIT} bytes exceeded"
SHORT = "fetch: received 100 bytes but Content-Length was 5000"


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture(scope="module")
def fetching() -> Iterator[httpx.Client]:
    args = ["--enable-fetch", "--disable-ssrf-protection", "--body-limit", str(LIMIT)]
    with ServerProcess(args) as proc, proc.client() as client:
        yield client


def q(**params: str) -> str:
    return urlencode(params)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        (SMALL_JPEG, {"width": "120", "format": "webp"}),
        (SMALL_PNG, {"width": "64", "height": "64", "fit": "cover", "format": "png"}),
        ("gif-animated-10f.gif", {"width": "50"}),
    ],
)
def test_fetch_and_transform_equals_upload_and_transform(
    origin: Origin, fetching: httpx.Client, name: str, params: dict[str, str]
) -> None:
    data = (CORPUS / name).read_bytes()
    uploaded = fetching.put("/transform", params=params, content=data)
    assert uploaded.status_code == 200, uploaded.text
    origin.reset()
    fetched = fetching.get("/transform", params={**params, "url": origin.url(f"/img/{name}")})
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == uploaded.content
    for header in ("content-type", "x-image-width", "x-image-height"):
        assert fetched.headers[header] == uploaded.headers[header]
    assert int(fetched.headers["x-response-time-ms"]) >= 0
    assert origin.paths == [f"/img/{name}"]


def test_fetch_and_metadata_equals_upload_and_metadata(
    origin: Origin, fetching: httpx.Client
) -> None:
    params = {"exif": "true", "stats": "true"}
    uploaded = fetching.put("/metadata", params=params, content=JPEG)
    fetched = fetching.get("/metadata", params={**params, "url": origin.url(f"/img/{SMALL_JPEG}")})
    assert fetched.status_code == uploaded.status_code == 200
    assert fetched.text == uploaded.text
    assert fetched.json()["width"] == 640
    assert fetched.headers["content-type"] == "application/json; charset=utf-8"


def test_chunked_bodies_and_redirect_chains(origin: Origin, fetching: httpx.Client) -> None:
    r = fetching.get("/metadata", params={"url": origin.url(f"/chunked/{SMALL_JPEG}")})
    assert r.status_code == 200 and r.json()["height"] == 480
    origin.reset()
    r = fetching.get("/metadata", params={"url": origin.url(f"/chain/10?name={SMALL_PNG}")})
    assert r.status_code == 200 and r.json()["format"] == "png"
    assert len(origin.requests) == 11


def test_head_fetches_but_sends_no_body(origin: Origin, fetching: httpx.Client) -> None:
    origin.reset()
    r = fetching.head("/transform", params={"url": origin.url(f"/img/{SMALL_JPEG}")})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["x-image-width"] == "640"
    assert len(origin.requests) == 1


def test_client_headers_are_never_forwarded(origin: Origin, fetching: httpx.Client) -> None:
    origin.reset()
    r = fetching.get(
        "/metadata",
        params={"url": origin.url(f"/img/{SMALL_JPEG}")},
        headers={
            "Cookie": "session=secret",
            "Authorization": "Bearer secret",
            "User-Agent": "curl/8",
            "X-Forwarded-For": "1.2.3.4",
            "Referer": "https://example.com/",
            "Accept-Encoding": "gzip, br",
        },
    )
    assert r.status_code == 200
    (seen,) = origin.requests
    assert seen.headers == {
        "Host": f"127.0.0.1:{origin.port}",
        "User-Agent": "imaged/0.2.3",
        "Accept": "*/*",
        "Accept-Encoding": "identity",
        "X-Request-ID": r.headers["x-request-id"],  # our own id (observability.md), not theirs
    }


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/status/404", 404, "fetch: not found"),
        ("/status/500", 502, "fetch: received status 500"),
        ("/status/401", 502, "fetch: received status 401"),
        ("/status/204", 502, "fetch: no body in response"),
        ("/status/300", 502, "fetch: received status 300"),
        ("/status/304", 502, "fetch: received status 304"),
        ("/redirect?" + q(status="300", to="/img/x"), 502, "fetch: received status 300"),
        ("/loop", 502, "fetch: too many redirects"),
        ("/chain/11", 502, "fetch: too many redirects"),
        ("/redirect?status=302", 502, "fetch: redirect response missing location header"),
        ("/redirect?" + q(to="http://"), 502, "fetch: invalid redirect location"),
        ("/redirect?" + q(to="ftp://x/"), 400, "fetch: only http and https URLs are supported"),
        (
            "/short?declared=5000&actual=100",
            502,
            "fetch: received 100 bytes but Content-Length was 5000",
        ),
        (
            f"/bytes?size={LIMIT + 1}",
            400,
            f"fetch: response body size limit of {LIMIT} bytes exceeded",
        ),
        (
            f"/bytes?size={LIMIT + 1}&chunked=1",
            400,
            f"fetch: response body size limit of {LIMIT} bytes exceeded",
        ),
        ("/bytes?size=50000000", 400, TOO_BIG),
        ("/bytes?size=100", 400, "image: unknown image type"),
        ("/bytes?size=0", 400, "image: unknown image type"),
        (f"/gzip/{SMALL_PNG}", 400, "image: unknown image type"),
    ],
)
def test_fetch_errors_over_http(
    origin: Origin, fetching: httpx.Client, path: str, status: int, text: str
) -> None:
    for endpoint in ("/transform", "/metadata"):
        r = fetching.get(endpoint, params={"url": origin.url(path)})
        assert (r.status_code, r.text) == (status, text), endpoint
        assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_loop_costs_eleven_requests(origin: Origin, fetching: httpx.Client) -> None:
    origin.reset()
    assert fetching.get("/transform", params={"url": origin.url("/loop")}).status_code == 502
    assert origin.paths == ["/loop"] * 11


def test_body_exactly_at_the_limit(origin: Origin, fetching: httpx.Client) -> None:
    r = fetching.get("/metadata", params={"url": origin.url(f"/img/{SMALL_JPEG}")})
    assert r.status_code == 200


def test_connection_refused(fetching: httpx.Client) -> None:
    r = fetching.get("/transform", params={"url": f"http://127.0.0.1:{free_port()}/x.jpg"})
    assert (r.status_code, r.text) == (502, "fetch: unable to make request")


def test_invalid_parameters_are_refused_before_fetching(
    origin: Origin, fetching: httpx.Client
) -> None:
    image = origin.url(f"/img/{SMALL_JPEG}")
    with origin.untouched():
        r = fetching.get("/transform", params={"url": image, "width": "abc", "strict": "true"})
        assert r.status_code == 400 and r.text.startswith("Invalid parameters:")
        r = fetching.get("/metadata", params={"url": image, "stats": "maybe", "strict": "true"})
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")
        for endpoint in ("/transform", "/metadata"):
            r = fetching.get(endpoint, params={"url": ""})
            assert (r.status_code, r.text) == (400, "missing 'url' query parameter")
    # A repeated url is one value joined with "," (http-api.md lists), not "missing".
    for endpoint in ("/transform", "/metadata"):
        r = fetching.get(endpoint, params=[("url", origin.url("/status/404?a=")), ("url", "b")])
        assert (r.status_code, r.text) == (404, "fetch: not found")
        assert origin.paths[-1] == "/status/404?a=,b"


def test_the_ten_second_timeout_covers_headers_and_body(
    origin: Origin, fetching: httpx.Client
) -> None:
    slow_headers = origin.url("/slow-headers?delay=14")
    trickle = origin.url("/trickle?size=1000&interval=0.25&seconds=14")

    def timed(url: str) -> tuple[float, int, str]:
        started = time.monotonic()
        r = fetching.get("/metadata", params={"url": url})
        return time.monotonic() - started, r.status_code, r.text

    with ThreadPoolExecutor(2) as pool:
        headers_result, body_result = pool.map(timed, [slow_headers, trickle])
    assert headers_result[1:] == (502, "fetch: unable to make request")
    assert body_result[1:] == (502, "fetch: error reading response body")
    for elapsed, _, _ in (headers_result, body_result):
        assert 9.5 <= elapsed < 13, elapsed


def test_routes_exist_only_with_fetch_enabled() -> None:
    with ServerProcess([]) as proc, proc.client() as client:
        for endpoint in ("/transform", "/metadata"):
            r = client.get(endpoint, params={"url": "http://127.0.0.1/x"})
            assert (r.status_code, r.text) == (404, "404 Not Found")
