"""The caching section of `make bench` (caching.md): one hot URL with and without the result
cache, and a 304 workload (`If-None-Match` with the response's own ETag).

The source is W2's input (12 MP JPEG → width 400, JPEG q80) served by a loopback origin in
this process that speaks `ETag`/`Last-Modified`/304 and counts requests; imaged fetches it
(`--enable-fetch --disable-ssrf-protection`). Each variant gets a fresh server; its CPU per
request is read from the server's own /proc entry, as in the matrix, so neither the origin
nor the load generator is charged. `origin/req` is origin requests per answered request:
below 1 without the cache shows coalescing (concurrent identical GETs share one fetch and
one operation), near 0 with the cache shows hits.
"""

from __future__ import annotations

import http.server
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import loadgen
from bench.measure import Probe, measure_server
from bench.servers import Imaged
from bench.workloads import BY_KEY

WORKLOAD = BY_KEY["W2"]
ORIGIN_ETAG = '"bench-source-1"'
ORIGIN_MODIFIED = "Sun, 06 Nov 1994 08:49:37 GMT"
CACHE_SIZE = 64 << 20


@dataclass(frozen=True)
class Variant:
    name: str
    cache: bool
    conditional: bool  # send If-None-Match with the response's ETag: every answer is a 304


VARIANTS = (
    Variant("hot URL, no cache", cache=False, conditional=False),
    Variant("hot URL, result cache", cache=True, conditional=False),
    Variant("304, no cache", cache=False, conditional=True),
    Variant("304, result cache", cache=True, conditional=True),
)


class _Origin(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, body: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.body = body
        self.requests = 0
        self.lock = threading.Lock()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Origin

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests += 1
        if self.headers.get("If-None-Match") == ORIGIN_ETAG:
            self.send_response(304)
            self.send_header("ETag", ORIGIN_ETAG)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.send_header("ETag", ORIGIN_ETAG)
        self.send_header("Last-Modified", ORIGIN_MODIFIED)
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def origin(path: Path) -> Iterator[_Origin]:
    server = _Origin(path.read_bytes())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def target(source_url: str) -> str:
    return f"{WORKLOAD.imaged_target}&url={quote(source_url, safe='')}"


def _first(url: str) -> tuple[str, Probe]:
    """The ETag and size of the first response (outside any measurement)."""
    with urllib.request.urlopen(url, timeout=300) as response:
        assert response.status == 200, response.status
        return str(response.headers["ETag"]), Probe(200, len(response.read()), None, None)


def run(
    tool: str, allocator: str, concurrency: int, levels: list[int], duration: float
) -> list[dict[str, Any]]:
    """Every variant at every client concurrency level; one row each."""
    rows: list[dict[str, Any]] = []
    with origin(WORKLOAD.path) as source:
        source_url = f"http://127.0.0.1:{source.server_address[1]}/{WORKLOAD.path.name}"
        for variant in VARIANTS:
            args = ["--enable-fetch", "--disable-ssrf-protection"]
            if variant.cache:
                args += ["--result-cache-size", str(CACHE_SIZE)]
            with Imaged(concurrency, allocator, args) as server:
                url = server.url + target(source_url)
                etag, out = _first(url)  # also fills the cache of the cached variants
                headers = (("If-None-Match", etag),) if variant.conditional else ()
                load = loadgen.Load("GET", url, headers=headers)
                loadgen.run(tool, load, max(levels), 3600, 2 * max(levels))  # warm-up
                for level in levels:
                    before = source.requests
                    row = measure_server(
                        server, WORKLOAD, variant.name, tool, level, duration, out, load
                    )
                    fetched = source.requests - before
                    rows.append({
                        **row.as_dict(),
                        "variant": variant.name,
                        "origin_per_request": fetched / row.requests if row.requests else None,
                    })  # fmt: skip
    return rows
