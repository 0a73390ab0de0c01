"""`GET /readyz` and `--shutdown-delay` (observability.md, Health and readiness): 200 `ready`
while the server accepts work; from SIGTERM on 503 `shutting down` while every route keeps
serving for the delay and a request in flight still completes through the graceful stop;
SIGINT skips the delay, also when it arrives during one."""

from __future__ import annotations

import json
import re
import signal
import time

import httpx
from tests.e2e.test_server_shutdown import in_flight, png, refused
from tests.serverkit import Proc, connect, free_port, read_response
from tests.waiting import wait_until

DELAY = 2


def start(*extra: str) -> tuple[Proc, str, tuple[str, int]]:
    port = free_port()
    proc = Proc(["-H", "127.0.0.1", "-p", str(port), *extra])
    return proc, f"http://127.0.0.1:{port}", ("127.0.0.1", port)


def readyz(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


def test_ready_while_accepting_work() -> None:
    proc, url, _ = start()
    with proc:
        for response in (readyz(url), httpx.head(f"{url}/readyz", timeout=10)):
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert re.fullmatch("[0-9a-f]{32}", response.headers["x-request-id"])
        assert readyz(url).text == "ready"


def test_sigterm_turns_readyz_503_while_in_flight_work_completes() -> None:
    proc, url, address = start("--shutdown-delay", str(DELAY), "--log-format", "json")
    with proc:
        body = png()
        sock = connect(address)
        head = f"PUT /metadata HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body[:10])
        in_flight(sock)  # its head is in, its body still coming
        signalled = time.monotonic()
        proc.send(signal.SIGTERM)
        wait_until(lambda: readyz(url).status_code == 503, "/readyz to turn 503")
        during = readyz(url)
        assert (during.text, during.headers["content-type"]) == (
            "shutting down",
            "text/plain; charset=utf-8",
        )
        # The delay: every route still serves new connections, so nothing is dropped while
        # load balancers notice the 503.
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            assert client.put("/metadata", content=body).json()["width"] == 8
        wait_until(lambda: refused(address), "the listener to close after the delay")
        assert time.monotonic() - signalled >= DELAY - 0.1  # not before the delay is over
        sock.sendall(body[10:])  # the request in flight completes through the stop
        response = read_response(sock, "PUT")
        sock.close()
        assert response.status == 200 and json.loads(response.body)["width"] == 8
        assert proc.wait(10) == 0
    records = [json.loads(line) for line in proc.lines()]
    assert records[-1]["msg"] == "Shutting down" and records[-1]["signal"] == "SIGTERM"
    assert not any(r["level"] in ("warn", "error") for r in records)


def test_sigint_skips_the_delay() -> None:
    proc, _, _ = start("--shutdown-delay", "30")
    with proc:
        started = time.monotonic()
        proc.send(signal.SIGINT)
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 5  # far less than the 30 s delay
    assert proc.lines()[-1].endswith("INFO Shutting down signal=SIGINT")


def test_sigint_during_the_delay_stops_at_once() -> None:
    proc, url, address = start("--shutdown-delay", "30")
    with proc:
        proc.send(signal.SIGTERM)
        wait_until(lambda: readyz(url).status_code == 503, "/readyz to turn 503")
        assert not refused(address)  # still serving: the delay has begun
        started = time.monotonic()
        proc.send(signal.SIGINT)
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 5
    assert proc.lines()[-1].endswith("INFO Shutting down signal=SIGTERM")  # logged once
