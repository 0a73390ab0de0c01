"""The per-operation time limit (`--operation-timeout`) really stops libvips.

A deliberately heavy transform (a σ=1000 gaussian blur) is answered with 400 within a
few seconds of the limit; the worker is free again (the next request is served at
once) and the server process stops burning CPU.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from bench.procstat import cpu_seconds
from tests.hardening import TEXT, encode, raw_request, synthetic
from tests.serverproc import CORPUS, ServerProcess

LIMIT = 1
ANSWER_WITHIN = 10.0  # the limit plus the tile in flight when libvips is killed, on 2 busy cores
MESSAGE = f"image: processing time limit of {LIMIT} s exceeded"
TWELVE_MP = CORPUS / "jpeg-12mp-olympus-ep3.jpg"
SMALL = encode(synthetic(64, 48), ".png")


@pytest.fixture(scope="module")
def slow_server() -> Iterator[ServerProcess]:
    with ServerProcess(["--concurrency", "1", "--operation-timeout", str(LIMIT)]) as proc:
        yield proc


@pytest.mark.parametrize(
    "query",
    [
        "blur=1000",  # full-size 12 MP
        "blur=1000&width=1000",  # shrink-on-load + resize: the small image sits in caches
        "blur=1000&width=1000&format=webp",
        "blur=1000&width=3000&height=3000&fit=contain&format=png",
    ],
)
def test_heavy_transform_is_stopped(slow_server: ServerProcess, query: str) -> None:
    port, pid = slow_server.port, slow_server.proc.pid
    started = time.monotonic()
    r = raw_request(port, "PUT", f"/transform?{query}", TWELVE_MP.read_bytes(), timeout=30)
    elapsed = time.monotonic() - started
    assert r.status == 400, (r.status, r.text[:200])
    assert r.text == MESSAGE
    assert r.header("content-type") == TEXT
    assert elapsed < ANSWER_WITHIN, f"answered after {elapsed:.1f} s"
    # The single worker is free again: a normal request is served at once …
    started = time.monotonic()
    small = raw_request(port, "PUT", "/transform?width=16", SMALL)
    assert small.status == 200
    assert time.monotonic() - started < 2.0
    # … and nothing keeps computing in the background.
    before = cpu_seconds(pid)
    time.sleep(1.0)  # the observation window: an absence is measured over a time
    assert cpu_seconds(pid) - before < 0.3


def test_operations_under_the_limit_are_untouched(slow_server: ServerProcess) -> None:
    r = raw_request(slow_server.port, "PUT", "/transform?blur=2&width=200", TWELVE_MP.read_bytes())
    assert r.status == 200, r.text[:200]
    assert r.header("x-image-width") == "200"
