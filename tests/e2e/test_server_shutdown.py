"""Graceful shutdown (config.md, Shutdown): on SIGTERM/SIGINT the server logs
`Shutting down`, stops accepting, closes idle keep-alive connections, lets requests in
flight finish (even one still uploading its body), and exits 0; after --shutdown-timeout
it logs `Timeout reached, forcing exit` and exits 1."""

from __future__ import annotations

import json
import signal
import socket
import time

import pyvips
from tests.serverkit import (
    Proc,
    closed_by_peer,
    connect,
    free_port,
    read_by_peer,
    read_response,
)
from tests.waiting import DEADLINE, wait_until


def start(*extra: str) -> tuple[Proc, tuple[str, int]]:
    port = free_port()
    return Proc(["-H", "127.0.0.1", "-p", str(port), *extra]), ("127.0.0.1", port)


def refused(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def in_flight(sock: socket.socket) -> None:
    """Until the server has read everything sent on `sock`: its request head is parsed."""
    wait_until(lambda: read_by_peer(sock), "the server to read the request head")


def png() -> bytes:
    return bytes(pyvips.Image.black(8, 6).write_to_buffer(".png"))


def test_in_flight_request_finishes_and_new_ones_are_refused() -> None:
    proc, address = start()
    with proc:
        body = png()
        idle = connect(address)  # a witness: closed once the server drains connections
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(idle).status == 200
        sock = connect(address)
        head = f"PUT /metadata HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body[:10])  # in flight: head in, body still coming
        in_flight(sock)
        proc.send(signal.SIGTERM)
        proc.wait_log("INFO Shutting down signal=SIGTERM")
        wait_until(lambda: refused(address), "the listening socket to close")
        assert closed_by_peer(idle, DEADLINE)  # draining has reached the connections …
        idle.close()
        sock.sendall(body[10:])  # … and the upload still goes on and completes
        response = read_response(sock, "PUT")
        assert response.status == 200
        assert json.loads(response.body)["width"] == 8
        assert response.headers["Connection"] == "close"
        sock.close()
        assert proc.wait(10) == 0
    lines = proc.lines()
    assert lines[-1].endswith("INFO Shutting down signal=SIGTERM")
    assert not any(" ERROR " in line or " WARN " in line for line in lines)


def test_idle_keep_alive_connections_are_closed_at_once() -> None:
    proc, address = start()  # keep-alive timeout 10 s
    with proc:
        sock = connect(address)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).status == 200  # the connection stays open (keep-alive)
        signalled = time.monotonic()
        proc.send(signal.SIGINT)
        assert closed_by_peer(sock, 3)
        assert proc.wait(5) == 0
        assert time.monotonic() - signalled < 3  # not the 10 s keep-alive timeout
        sock.close()
    assert "INFO Shutting down signal=SIGINT" in proc.log()


def test_shutdown_timeout_forces_exit_1() -> None:
    proc, address = start("--shutdown-timeout", "1", "--log-format", "json")
    with proc:
        sock = connect(address)
        sock.sendall(b"PUT /metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        in_flight(sock)  # and its body never completes
        signalled = time.monotonic()
        proc.send(signal.SIGTERM)
        assert proc.wait(10) == 1
        assert 0.9 <= time.monotonic() - signalled < 4
        sock.close()
    records = [json.loads(line) for line in proc.lines()]
    assert records[-2] == {**records[-2], "level": "info", "signal": "SIGTERM"}
    assert records[-2]["msg"] == "Shutting down"
    assert list(records[-1]) == ["level", "time", "msg"]
    assert records[-1]["level"] == "warn" and records[-1]["msg"] == "Timeout reached, forcing exit"


def test_signal_with_no_connections_exits_promptly() -> None:
    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        proc, _ = start()
        with proc:
            started = time.monotonic()
            assert proc.stop(sig) == 0
            assert time.monotonic() - started < 3
        assert proc.lines()[-1].endswith(f"INFO Shutting down signal={name}")
