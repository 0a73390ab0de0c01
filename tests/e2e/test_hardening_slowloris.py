"""Slow clients: heads and bodies trickled byte by byte are cut off by the read deadlines
(total deadlines, not idle timeouts) while every other client is served promptly.

The server runs with short deadlines (`--header-timeout 2 --body-timeout 3`) so the test
takes seconds instead of the defaults' 30 s / 60 s; the mechanism is the same.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.hardening import encode, raw_request, synthetic
from tests.serverproc import ServerProcess

HEAD_DEADLINE = 2
BODY_DEADLINE = 3
GRACE = 2.5  # scheduling slack on a loaded 2-core machine
SMALL = encode(synthetic(64, 48), ".png")


@pytest.fixture(scope="module")
def strict_server() -> Iterator[ServerProcess]:
    args = ["--concurrency", "2", "--header-timeout", str(HEAD_DEADLINE)]
    with ServerProcess([*args, "--body-timeout", str(BODY_DEADLINE)]) as proc:
        yield proc


def trickle(port: int, prefix: bytes, drip: bytes, interval: float, limit: float) -> tuple:
    """Send `prefix` at once, then `drip` one byte every `interval` s until the server cuts
    the connection. Returns (seconds from connect to cut, bytes the server sent)."""
    sock = socket.create_connection(("127.0.0.1", port))
    started = time.monotonic()
    received = b""
    try:
        sock.sendall(prefix)
        index = 0
        while time.monotonic() - started < limit:
            try:
                sock.sendall(drip[index % len(drip) : index % len(drip) + 1])
            except OSError:
                return time.monotonic() - started, received
            index += 1
            readable, _, _ = select.select([sock], [], [], interval)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    return time.monotonic() - started, received
                if not chunk:
                    return time.monotonic() - started, received
                received += chunk
        return float("inf"), received
    finally:
        sock.close()


def assert_cut(result: tuple, deadline: float) -> None:
    seconds, received = result
    assert seconds < deadline + GRACE, f"still connected after {seconds:.1f} s"
    assert received == b"" or received.startswith(b"HTTP/1.1 408"), received[:200]


def serve_others(port: int, stop: threading.Event, latencies: list[float]) -> None:
    """A well-behaved client: /healthz and a small transform, back to back."""
    while not stop.is_set():
        for method, target, body in (("GET", "/healthz", None), ("PUT", "/transform", SMALL)):
            started = time.monotonic()
            assert raw_request(port, method, target, body, timeout=10).status == 200
            latencies.append(time.monotonic() - started)
        time.sleep(0.05)  # the pace of this client, not a wait for anything


def run_with_others(port: int, jobs: list) -> list:
    stop = threading.Event()
    latencies: list[float] = []
    other = threading.Thread(target=serve_others, args=(port, stop, latencies))
    other.start()
    try:
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            results = list(pool.map(lambda job: job(), jobs))
    finally:
        stop.set()
        other.join()
    assert len(latencies) >= 10, "other clients were starved"
    assert max(latencies) < 1.5, f"another client waited {max(latencies):.2f} s"
    return results


def test_trickled_heads_are_cut_off_while_others_are_served(strict_server: ServerProcess) -> None:
    port = strict_server.port
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

    def slow_head() -> tuple:
        return trickle(port, b"", head + b"a" * 10_000, 0.25, limit=20)

    for result in run_with_others(port, [slow_head] * 20):
        assert_cut(result, HEAD_DEADLINE)


def test_one_byte_per_second_is_cut_too(strict_server: ServerProcess) -> None:
    """A total deadline: a client that keeps the connection "active" is still cut."""
    result = trickle(strict_server.port, b"P", b"UT /transform HTTP/1.1\r\nX: y\r\n", 1.0, 20)
    assert_cut(result, HEAD_DEADLINE)


def test_trickled_bodies_are_cut_off_while_others_are_served(strict_server: ServerProcess) -> None:
    port = strict_server.port
    head = (
        b"PUT /transform HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
    )

    def slow_body() -> tuple:
        return trickle(port, head, SMALL, 0.25, limit=20)

    for result in run_with_others(port, [slow_body] * 10):
        assert_cut(result, BODY_DEADLINE)


def test_trickled_chunked_body_is_cut_off(strict_server: ServerProcess) -> None:
    head = b"PUT /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"1\r\nx\r\n"
    assert_cut(trickle(strict_server.port, head, chunk, 0.2, 20), BODY_DEADLINE)


def test_second_request_on_a_kept_alive_connection_has_a_deadline(
    strict_server: ServerProcess,
) -> None:
    first = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    seconds, received = trickle(strict_server.port, first, b"GET /healthz HTTP/1.1\r\n", 0.25, 20)
    assert received.startswith(b"HTTP/1.1 200"), received[:100]
    assert received.count(b"HTTP/1.1 200") == 1
    body_and_rest = received.split(b"\r\n\r\n", 1)[1]
    after_body = body_and_rest[body_and_rest.index(b"}") + 1 :]
    assert after_body == b"" or after_body.startswith(b"HTTP/1.1 408"), after_body[:100]
    assert seconds < HEAD_DEADLINE + GRACE


def test_many_idle_connections_do_not_block_others(strict_server: ServerProcess) -> None:
    port = strict_server.port
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    try:
        started = time.monotonic()
        assert raw_request(port, "GET", "/healthz").status == 200
        assert raw_request(port, "PUT", "/transform", SMALL).status == 200
        assert time.monotonic() - started < 2.0
    finally:
        for sock in idle:
            sock.close()
