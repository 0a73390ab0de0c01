"""The playground over HTTP (playground.md, Serving): the page and its assets with their
media types, the strict CSP and nosniff; `/` redirects to it; no token or signature is
needed for it; `--disable-playground` (or DISABLE_PLAYGROUND) removes all of it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from tests.serverproc import ServerProcess
from tests.test_playground import FOLDER

from imaged.server import playground

CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'"
)
TYPES = {
    "/playground": "text/html; charset=utf-8",
    "/playground/playground.css": "text/css; charset=utf-8",
    "/playground/playground.js": "text/javascript; charset=utf-8",
    "/playground/placeholders.js": "text/javascript; charset=utf-8",
    "/playground/favicon.svg": "image/svg+xml; charset=utf-8",
}
FILES = {"/playground": "index.html"} | {
    path: path.rsplit("/", 1)[1] for path in TYPES if path != "/playground"
}


def assert_secured(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_page_and_its_assets(client: httpx.Client) -> None:
    assert set(TYPES) == {playground.asset_path(n) for n in playground.MEDIA_TYPES}
    for path, media_type in TYPES.items():
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"] == media_type
        assert r.content == (FOLDER / FILES[path]).read_bytes()
        assert_secured(r)
        head = client.head(path)
        assert (head.status_code, head.content) == (200, b"")
        assert_secured(head)


def test_browsers_revalidate_the_files(client: httpx.Client) -> None:
    for path in TYPES:
        first = client.get(path)
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "no-cache"
        again = client.get(path, headers={"If-None-Match": etag})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
        assert_secured(again)
        other = client.get(path, headers={"If-None-Match": '"other", "tags"'})
        assert other.status_code == 200 and other.content == first.content
    etags = {client.get(path).headers["etag"] for path in TYPES}
    assert len(etags) == len(TYPES)  # one per file


def test_root_redirects_to_the_page(client: httpx.Client) -> None:
    for method in ("GET", "HEAD"):
        r = client.request(method, "/")
        assert (r.status_code, r.headers["location"]) == (302, "/playground")
        assert_secured(r)
    assert client.get("/", follow_redirects=True).url.path == "/playground"


def test_other_paths_stay_404(client: httpx.Client) -> None:
    for path in ("/playground/", "/playground/index.html", "/playground/x.js", "/index.html"):
        r = client.get(path)
        assert (r.status_code, r.text) == (404, "404 Not Found"), path
    assert client.put("/playground", content=b"x").status_code == 404


def test_no_token_or_signature_is_needed(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--api-tokens", "t" * 20, "--signing-keys", "ab" * 32, "--enable-fetch")
    with server.client() as c:
        for path in ("/", *TYPES):
            assert c.get(path).status_code == (302 if path == "/" else 200), path
        assert c.put("/transform", content=b"x").status_code == 401  # the API still is


def test_disabled_by_flag_or_environment(start_server: Callable[..., ServerProcess]) -> None:
    for server in (
        start_server("--disable-playground"),
        start_server(env={"DISABLE_PLAYGROUND": "true"}),
    ):
        with server.client() as c:
            for path in ("/", *TYPES):
                r = c.get(path)
                assert (r.status_code, r.text) == (404, "404 Not Found"), path
                assert "content-security-policy" not in r.headers
            paths = c.get("/openapi.json").json()["paths"]
            assert not [p for p in paths if p == "/" or p.startswith("/playground")]
    with start_server("--disable-playground", "false").client() as c:
        assert c.get("/playground").status_code == 200
