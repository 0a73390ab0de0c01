"""Overload: a bounded image queue answers 503 + Retry-After at once, /healthz stays
responsive, and a burst of hundreds of connections is answered, never dropped."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import pyvips
from tests.hardening import (
    TEXT,
    encode,
    raw_request,
    read_raw_response,
    request_bytes,
    send_request,
    synthetic,
)
from tests.serverkit import LISTEN, read_by_peer, tcp_sockets
from tests.serverproc import ServerProcess
from tests.waiting import await_until, wait_until

# A flat 12-megapixel PNG: a 40 kB upload (so it is running a moment after it is sent)
# that keeps one core busy for seconds under a large blur (far longer than a burst of
# small requests takes to arrive, which the tests assert).
FLAT_12MP = bytes((pyvips.Image.black(4000, 3000, bands=3) + 90).cast("uchar").pngsave_buffer())
BLOCKER_REQUEST = request_bytes("PUT", b"/transform?blur=200", FLAT_12MP)  # ~4 s idle
SMALL = encode(synthetic(64, 48), ".png")
LIGHT = "/transform?width=16"
LIGHT_REQUEST = request_bytes("PUT", LIGHT.encode(), SMALL)


@pytest.fixture(scope="module")
def busy_server() -> Iterator[ServerProcess]:
    with ServerProcess(["--concurrency", "1", "--queue-limit", "4"]) as proc:
        yield proc


def read_by_server(*socks: socket.socket) -> None:
    """Until the server has read every request sent on `socks`. Nothing but computation
    lies between a read request and its permit (taken, or waited for in the queue), so
    after this a later request finds the permits in the state these ones put them in."""
    wait_until(lambda: all(read_by_peer(s) for s in socks), "the server to read the requests")


def test_full_queue_gets_503_at_once_and_the_rest_succeed(busy_server: ServerProcess) -> None:
    port = busy_server.port

    def heavy(sock: socket.socket) -> tuple[int, float]:
        r = read_raw_response(sock, "PUT")
        return r.status, time.monotonic()

    def light(sock: socket.socket) -> tuple[int, str | None, str, float]:
        r = read_raw_response(sock, "PUT")
        return r.status, r.header("retry-after"), r.text, time.monotonic()

    with ThreadPoolExecutor(max_workers=16) as pool:
        sent = send_request(port, BLOCKER_REQUEST)
        blocker = pool.submit(heavy, sent)
        read_by_server(sent)  # the blocker holds the only permit now

        light_socks = [send_request(port, LIGHT_REQUEST) for _ in range(10)]
        read_by_server(*light_socks)  # all ten queued or refused
        # The premise of the counts below: the blocker still held the permit when the last
        # of the ten arrived (it runs for seconds; the ten are read in milliseconds).
        assert not blocker.done(), "the blocker finished before the burst was read"
        burst = [pool.submit(light, sock) for sock in light_socks]
        # /healthz never waits for a permit, even with the queue full.
        for _ in range(3):
            started = time.monotonic()
            assert raw_request(port, "GET", "/healthz").status == 200
            assert time.monotonic() - started < 1.0
        results = [future.result() for future in burst]
        blocker_status, blocker_done = blocker.result()
    assert blocker_status == 200
    busy = [r for r in results if r[0] == 503]
    served = [r for r in results if r[0] == 200]
    assert len(busy) + len(served) == len(results), results
    assert len(served) == 4, "exactly the queue limit waits and is served"
    assert len(busy) == 6
    for _, retry_after, text, finished in busy:
        assert retry_after is not None and retry_after.isdigit()
        assert text == "server busy, retry later"
        # Answered at once: well before the blocker released the permit.
        assert finished < blocker_done
    assert raw_request(port, "GET", "/healthz").status == 200


def test_503_is_plain_text_with_retry_after(busy_server: ServerProcess) -> None:
    port = busy_server.port
    with ThreadPoolExecutor(max_workers=8) as pool:
        sent = send_request(port, BLOCKER_REQUEST)
        blocker = pool.submit(read_raw_response, sent, "PUT")
        read_by_server(sent)  # the blocker holds the only permit
        waiting = [send_request(port, LIGHT_REQUEST) for _ in range(4)]
        queued = [pool.submit(read_raw_response, sock, "PUT") for sock in waiting]
        read_by_server(*waiting)  # the queue (limit 4) is full
        started = time.monotonic()
        r = raw_request(port, "PUT", "/metadata", SMALL)
        assert time.monotonic() - started < 1.0
        assert r.status == 503
        assert r.header("content-type") == TEXT
        assert r.header("retry-after") == "1"
        assert r.header("x-image-width") is None
        assert [f.result().status for f in queued] == [200] * 4
        assert blocker.result().status == 200


def test_twenty_parallel_requests_all_succeed_with_one_permit(
    start_server: type[ServerProcess],
) -> None:
    """performance.md: the default queue is large enough for a few dozen requests."""
    proc = start_server("--concurrency", "1")
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(
            pool.map(lambda _: raw_request(proc.port, "PUT", LIGHT, SMALL).status, range(20))
        )
    assert statuses == [200] * 20


async def _one(
    port: int, connected: Callable[[], None], opened: asyncio.Event, payload: bytes
) -> tuple[str, int, str]:
    """Open a connection, wait for every other one to be open, send, read to EOF."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return ("connect-failed", 0, repr(exc))
    finally:
        connected()
    try:
        await opened.wait()
        writer.write(payload)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 120)
    except (OSError, TimeoutError) as exc:
        return ("dropped", 0, repr(exc))
    finally:
        writer.close()
    if not data.startswith(b"HTTP/1.1 "):
        return ("no-answer", 0, data[:100].decode("latin-1"))
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return ("answered", int(head[9:12]), head)


def _accept_queue_empty(port: int) -> bool:
    """The server has accepted every connection the kernel completed for it."""
    return all(s.rx_queue == 0 for s in tcp_sockets() if s.state == LISTEN and s.local[1] == port)


async def _burst(port: int, count: int, payload: bytes) -> list[tuple[str, int, str]]:
    opened = asyncio.Event()
    attempts: list[None] = []
    tasks = [
        asyncio.create_task(_one(port, lambda: attempts.append(None), opened, payload))
        for _ in range(count)
    ]
    # Every connection is open (or has failed, which the result reports) and accepted.
    await await_until(lambda: len(attempts) == count, "every connection attempt")
    await await_until(lambda: _accept_queue_empty(port), "the server to accept them all")
    opened.set()
    return await asyncio.gather(*tasks)


def test_burst_of_200_connections_is_answered(server: ServerProcess) -> None:
    health: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            started = time.monotonic()
            assert raw_request(server.port, "GET", "/healthz").status == 200
            health.append(time.monotonic() - started)
            time.sleep(0.05)  # the pace of this probe, not a wait for anything

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        results = asyncio.run(_burst(server.port, 200, LIGHT_REQUEST))
    finally:
        stop.set()
        prober.join()
    outcomes = [r[0] for r in results]
    assert outcomes == ["answered"] * 200, [r for r in results if r[0] != "answered"][:5]
    statuses = [r[1] for r in results]
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert statuses.count(200) >= 64, statuses.count(503)  # at least the queue limit
    for _, status, head in results:
        if status == 503:
            assert "\r\nRetry-After: " in head
    assert health and max(health) < 2.0, max(health)
    assert server.proc.poll() is None
