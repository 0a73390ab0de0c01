"""Shared by the caching tests: a fetching server against the loopback origin, and the
headers a 304 must and must not carry (caching.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.fetch_origin import SMALL_JPEG
from tests.serverproc import CORPUS, ServerProcess

JPEG = (CORPUS / SMALL_JPEG).read_bytes()
PNG_BYTES = (CORPUS / "png-palette-8bit.png").read_bytes()
ETAG = re.compile(r'"[A-Za-z0-9_-]{1,64}"')
DEFAULT_CACHE_CONTROL = "public, max-age=31536000"
MODIFIED = "Sun, 06 Nov 1994 08:49:37 GMT"
LATER = "Mon, 07 Nov 1994 08:49:37 GMT"
# Fetching from the loopback origin needs SSRF protection off.
FETCH_ARGS = ("--enable-fetch", "--disable-ssrf-protection")


@contextmanager
def fetching_server(*args: str) -> Iterator[tuple[ServerProcess, httpx.Client]]:
    with ServerProcess([*FETCH_ARGS, *args]) as proc, proc.client() as client:
        yield proc, client


def assert_not_modified(response: httpx.Response, etag: str) -> None:
    """A 304: the ETag, no body, no Content-Type."""
    assert response.status_code == 304, response.text
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert "content-type" not in response.headers
    assert "x-image-width" not in response.headers
