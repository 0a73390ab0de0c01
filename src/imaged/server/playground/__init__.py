"""The playground (playground.md): a page on the main listener to try every option.

The page is static HTML, CSS and JavaScript shipped beside this module as package data (no
build step, nothing from outside the server). Its script builds every control from
`GET /openapi.json` and calls only the public API, so this module knows no parameter: it
serves the files, read once when the application is built, with the strict
`Content-Security-Policy` of the spec, and redirects `/` to the page. With
`--disable-playground` none of its routes exist (404, like any unknown path).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from imaged.server.conditional import Conditions, strong_etag

PAGE = "/playground"
ROOT = "/"
# Every response of the playground carries these (playground.md, Serving).
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
# The page changes with the server version: browsers revalidate it (ETag → 304) each time.
CACHE_CONTROL = "no-cache"
INDEX = "index.html"
# The files under /playground/, by name, with their media types; the page is `INDEX`.
ASSETS: dict[str, str] = {
    "playground.css": "text/css",
    "playground.js": "text/javascript",
    "placeholders.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
MEDIA_TYPES: dict[str, str] = {INDEX: "text/html", **ASSETS}


def asset_path(name: str) -> str:
    """The URL path of a file: the page itself is `/playground`."""
    return PAGE if name == INDEX else f"{PAGE}/{name}"


def _secured(response: web.Response) -> web.Response:
    response.headers.update(SECURITY_HEADERS)
    return response


@dataclass(frozen=True)
class File:
    body: bytes
    media_type: str

    @functools.cached_property
    def etag(self) -> str:
        return strong_etag(self.body)

    def response(self, request: web.Request) -> web.Response:
        """200 with the file, or 304 when the client's copy (If-None-Match) is this one."""
        headers = {"ETag": self.etag, "Cache-Control": CACHE_CONTROL}
        conditions = Conditions.parse(request.headers.getall("If-None-Match", []), None)
        if conditions.not_modified(self.etag, None):
            return _secured(web.Response(status=304, headers=headers))
        response = web.Response(body=self.body, content_type=self.media_type, charset="utf-8")
        response.headers.update(headers)
        return _secured(response)


def read_files() -> dict[str, File]:
    """Every file of the page from the installed package, by URL path."""
    folder = resources.files(__name__)
    return {
        asset_path(name): File(folder.joinpath(name).read_bytes(), media_type)
        for name, media_type in MEDIA_TYPES.items()
    }


def add_routes(app: web.Application) -> None:
    """Register `GET /playground`, its assets and `GET /` (each with its HEAD twin)."""
    files = read_files()

    async def serve(request: web.Request) -> web.Response:
        """a file of the playground page (playground.md)"""
        return files[request.path].response(request)

    async def redirect(request: web.Request) -> web.Response:
        """redirect to the playground page"""
        return _secured(web.Response(status=302, headers={"Location": PAGE}))

    app.router.add_get(ROOT, redirect)
    for path in files:
        app.router.add_get(path, serve)
