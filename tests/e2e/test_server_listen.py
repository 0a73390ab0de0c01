"""TCP listening of the real server (config.md, Listening; performance.md, CI): the CI smoke
test on the defaults, `localhost` = both loopbacks and nothing else, host/port from flags
and environment, a taken port, and a listen backlog of at least 511."""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path

import httpx
import pytest
from tests.serverkit import (
    LINE_TIME,
    LISTEN,
    Proc,
    connect,
    free_port,
    ipv6_loopback,
    port_is_free,
    read_response,
    run_cli,
    tcp_sockets,
)
from tests.waiting import wait_until


def listening_addresses(port: int) -> set[str]:
    """Addresses with a TCP socket in LISTEN state on `port` (from /proc/net/tcp{,6})."""
    return {s.local[0] for s in tcp_sockets() if s.state == LISTEN and s.local[1] == port}


def test_ci_smoke_defaults() -> None:
    """performance.md: start with the defaults, GET /healthz on localhost:8000, stop.
    (When 8000 is taken on this machine, PORT selects another port; nothing else is set.)"""
    port = 8000 if port_is_free(8000) else free_port()
    env = {} if port == 8000 else {"PORT": str(port)}
    with Proc([], env) as proc:  # started: it logged `server listening`
        response = httpx.get(f"http://localhost:{port}/healthz", timeout=10)
        assert 200 <= response.status_code < 300
        assert f"INFO server listening tls=false mtls=false url=http://localhost:{port}" in (
            proc.log()
        )
        expected = {"127.0.0.1", "::1"} if ipv6_loopback() else {"127.0.0.1"}
        assert listening_addresses(port) == expected  # loopback only
        assert proc.stop() == 0


def test_localhost_serves_both_loopbacks() -> None:
    port = free_port()
    with Proc(["--host", "localhost", "--port", str(port)]):
        hosts = ["127.0.0.1", "[::1]"] if ipv6_loopback() else ["127.0.0.1"]
        for host in hosts:
            response = httpx.get(f"http://{host}:{port}/healthz", timeout=10)
            assert response.status_code == 200, host


def test_explicit_host_binds_only_that_address() -> None:
    port = free_port()
    with Proc(["-H", "127.0.0.1", "-p", str(port)]) as proc:
        assert listening_addresses(port) == {"127.0.0.1"}
        assert "url=http://127.0.0.1:" in proc.log()
    if ipv6_loopback():
        port = free_port()
        with Proc(["-H", "::1", "-p", str(port)]) as proc:
            assert listening_addresses(port) == {"::1"}
            assert httpx.get(f"http://[::1]:{port}/healthz", timeout=10).status_code == 200
            assert f"url=http://[::1]:{port}" in proc.log()


def test_host_and_port_from_environment_and_flag_precedence() -> None:
    env_port, flag_port = free_port(), free_port()
    with Proc([], {"HOST": "127.0.0.1", "PORT": str(env_port)}) as proc:
        assert listening_addresses(env_port) == {"127.0.0.1"}
        assert f"url=http://127.0.0.1:{env_port}" in proc.log()
    with Proc(["--port", str(flag_port)], {"HOST": "127.0.0.1", "PORT": str(env_port)}):
        assert listening_addresses(flag_port) == {"127.0.0.1"}
        assert listening_addresses(env_port) == set()


def test_port_in_use_is_fatal() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["-H", "127.0.0.1", "-p", str(port)])
    assert result.returncode == 1
    last = result.stdout.splitlines()[-1]
    expected = f"FATAL Error starting server url=http://127.0.0.1:{port} err="
    assert re.match(f"{LINE_TIME} {re.escape(expected)}", last), last
    assert "server listening" not in result.stdout


def test_backlog_holds_a_burst_of_connections() -> None:
    """While the process is stopped, the kernel completes handshakes into the listen
    queue; with a backlog ≥ 511 a burst of 520 connects all succeed at once and are all
    answered once the server runs again."""
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    burst = min(520, somaxconn)
    port = free_port()
    with Proc(["-H", "127.0.0.1", "-p", str(port), "--log-level", "warn"], wait=False) as proc:
        # No `server listening` line at warn level: wait for the listening socket itself.
        wait_until(
            lambda: listening_addresses(port) or proc.proc.poll() is not None,
            "the server to listen",
        )
        assert proc.proc.poll() is None, proc.log()
        proc.send(signal.SIGSTOP)
        socks: list[socket.socket] = []
        try:
            for _ in range(burst):
                sock = connect(("127.0.0.1", port), timeout=3)  # times out if not queued
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                socks.append(sock)
            proc.send(signal.SIGCONT)
            statuses = [read_response(sock).status for sock in socks]
        finally:
            proc.send(signal.SIGCONT)
            for sock in socks:
                sock.close()
    assert statuses == [200] * burst


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_http_1_1_keep_alive_by_default(host: str) -> None:
    port = free_port()
    with Proc(["-H", host, "-p", str(port)]), connect(("127.0.0.1", port)) as sock:
        for _ in range(2):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            response = read_response(sock)
            assert response.status == 200 and response.version == 11
            assert response.headers.get("Connection") is None  # kept alive
