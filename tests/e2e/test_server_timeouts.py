"""Read deadlines and keep-alive (http-api.md, Server basics), with short test deadlines:
the head must arrive within --header-timeout of the connection opening (or of the previous
response), the body within --body-timeout after the head; both are total deadlines, so a
client trickling bytes is cut off with 408. Slow clients never hold up others."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.serverkit import (
    Proc,
    closed_by_peer,
    connect,
    read_by_peer,
    read_response,
    recv_all,
)
from tests.waiting import wait_until

HEAD = 2  # --header-timeout
BODY = 2  # --body-timeout
KEEPALIVE = 1  # --keepalive-timeout


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    from tests.serverkit import free_port

    port = free_port()
    args = ["--host", "127.0.0.1", "--port", str(port), "--header-timeout", str(HEAD)]
    args += ["--body-timeout", str(BODY), "--keepalive-timeout", str(KEEPALIVE)]
    with Proc(args) as proc:
        yield ("127.0.0.1", port)
        assert " ERROR " not in proc.log() and " WARN " not in proc.log(), proc.log()


def trickle(
    sock: socket.socket,
    data: bytes,
    interval: float,
    stop: threading.Event,
    started: threading.Event | None = None,
) -> None:
    """A slow client: one byte every `interval` seconds; `started` is set after the first."""
    for byte in data:
        if stop.is_set():
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return
        if started is not None:
            started.set()
        time.sleep(interval)  # the slowness under test


def cut_off(address: tuple[str, int], first: bytes, trickled: bytes) -> tuple[bytes, float]:
    """Send `first`, then trickle `trickled` at 10 bytes/s; everything the server answers
    until it closes, and the seconds from the end of `first` to the close."""
    sock = connect(address)
    sock.sendall(first)
    started = time.monotonic()
    stop = threading.Event()
    threading.Thread(target=trickle, args=(sock, trickled, 0.1, stop), daemon=True).start()
    raw = recv_all(sock, timeout=max(HEAD, BODY) + 5)
    elapsed = time.monotonic() - started
    stop.set()
    sock.close()
    return raw, elapsed


def test_read_deadlines_are_total_and_answered_with_408(server: tuple[str, int]) -> None:
    """Run side by side (each takes a deadline to expire)."""
    scenarios = {
        # the head keeps trickling in: cut HEAD s after the connection opened, even though
        # the keep-alive timeout (1 s) is shorter — once a head has started, it is the rule
        "head": (b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200, HEAD),
        # the body keeps trickling in: cut BODY s after the head
        "body": (
            b"PUT /metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
            b"x" * 1000,
            BODY,
        ),
        # on a kept-alive connection the next head's deadline counts from the response
        "next head": (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"b" * 200,
            HEAD,
        ),
        # a chunked body that stalls
        "chunked": (
            b"PUT /transform HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4\r\nabcd\r\n",
            b"",
            BODY,
        ),
    }
    results: dict[str, tuple[bytes, float]] = {}

    def run(name: str, first: bytes, trickled: bytes) -> None:
        results[name] = cut_off(server, first, trickled)

    threads = [
        threading.Thread(target=run, args=(name, first, trickled))
        for name, (first, trickled, _) in scenarios.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, (_first, _trickled, deadline) in scenarios.items():
        raw, elapsed = results[name]
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)
        assert statuses == ([b"200", b"408"] if name == "next head" else [b"408"]), (name, raw)
        assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in raw, name
        assert b"\r\nConnection: close\r\n" in raw, name
        assert deadline - 0.2 <= elapsed < deadline + 2, (name, elapsed)
    assert results["head"][0].endswith(b"the request head was not received in time")
    assert results["body"][0].endswith(b"the request body was not received in time")


def test_idle_connection_closed_after_keepalive_timeout(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        opened = time.monotonic()
        assert closed_by_peer(sock, KEEPALIVE + 3)
        assert KEEPALIVE - 0.2 <= time.monotonic() - opened < KEEPALIVE + 2


def test_kept_alive_connection_reused_then_closed_when_idle(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            response = read_response(sock)
            assert response.status == 200 and response.version == 11
            assert response.headers.get("Connection", "").lower() != "close"
        answered = time.monotonic()
        assert closed_by_peer(sock, KEEPALIVE + 3)
        assert time.monotonic() - answered < KEEPALIVE + 2


def test_slow_clients_do_not_block_others(server: tuple[str, int]) -> None:
    stop = threading.Event()
    slow: list[tuple[socket.socket, threading.Event]] = []
    try:
        for i in range(8):
            sock, started = connect(server), threading.Event()
            slow.append((sock, started))
            data = (
                b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"c" * 100
                if i % 2
                else b"PUT /metadata HTTP/1.1\r\nContent-Length: 500\r\n\r\n" + b"d" * 500
            )
            args = (sock, data, 0.05, stop, started)
            threading.Thread(target=trickle, args=args, daemon=True).start()
        # Every slow client has sent bytes and the server has read them: it is holding all
        # eight connections mid-request. Each socket counts once it has been seen read (the
        # trickle keeps a byte in flight at most moments, so all eight at one instant may
        # take longer than the head deadline on a loaded machine).
        seen: set[int] = set()

        def every_client_read() -> bool:
            for i, (sock, started) in enumerate(slow):
                if i not in seen and started.is_set() and read_by_peer(sock):
                    seen.add(i)
            return len(seen) == len(slow)

        wait_until(every_client_read, "the server to read from every slow client")
        with httpx.Client(base_url=f"http://{server[0]}:{server[1]}", timeout=5) as client:
            for _ in range(5):
                started = time.monotonic()
                assert client.get("/healthz").status_code == 200
                assert time.monotonic() - started < 1.0
    finally:
        stop.set()
        for sock, _ in slow:
            sock.close()


def test_complete_requests_within_the_deadlines_are_served(server: tuple[str, int]) -> None:
    """Bytes arriving slowly but in time are fine: the deadlines are not idle timeouts."""
    with connect(server) as sock:
        for part in (b"GET /health", b"z HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
            sock.sendall(part)
            time.sleep(0.3)  # a slow client, but in time: the pause is what is tested
        response = read_response(sock)
    assert response.status == 200
