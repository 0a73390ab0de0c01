"""Unix-socket listening (config.md, Listening; Compatibility policy): parent directories
created, a stale socket replaced, a live one refused, any other file refused with the exact
message, host/port ignored, the socket removed on exit."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
from pathlib import Path

import httpx
from tests.serverkit import (
    LINE_TIME,
    Proc,
    exchange,
    free_port,
    port_is_free,
    read_by_peer,
    run_cli,
    run_cli_many,
    wait_gone,
)
from tests.waiting import wait_until


def uds_get(path: str, target: str = "/healthz") -> httpx.Response:
    with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=10) as client:
        return client.get(f"http://localhost{target}")


def test_serves_on_a_unix_socket_in_new_directories(tmp_path: Path) -> None:
    path = str(tmp_path / "a" / "b" / "imaged.sock")
    port = free_port()
    with Proc(["--unix", path, "--port", str(port)]) as proc:
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        response = uds_get(path)
        assert response.status_code == 200 and response.json()["version"] == "0.2.3"
        raw = exchange(path, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (raw.status, raw.text) == (404, "404 Not Found")
        assert f"INFO server listening tls=false mtls=false url={path}" in proc.log()
        assert port_is_free(port)  # host/port are ignored
        assert proc.stop(signal.SIGTERM) == 0
    assert not os.path.lexists(path)  # removed on exit


def test_unix_socket_from_the_environment(tmp_path: Path) -> None:
    path = str(tmp_path / "env.sock")
    with Proc([], {"UNIX_SOCKET": path}) as proc:
        assert uds_get(path).status_code == 200
        assert proc.stop(signal.SIGINT) == 0
    assert not os.path.lexists(path)


def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "stale.sock")
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(path)  # a crashed server's socket file: nobody listens on it
    leftover.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    with Proc(["--unix", path]):
        assert uds_get(path).status_code == 200


def test_live_socket_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "live.sock")
    with Proc(["--unix", path]) as first:
        inode = os.lstat(path).st_ino
        result = run_cli(["--unix", path])
        assert result.returncode == 1
        last = result.stdout.splitlines()[-1]
        message = f"Refusing to replace a UNIX socket that is in use: {path}"
        assert re.fullmatch(f"{LINE_TIME} FATAL {re.escape(message)}", last), result.stdout
        assert "server listening" not in result.stdout
        # the running server keeps its socket and keeps serving
        assert os.lstat(path).st_ino == inode
        assert uds_get(path).status_code == 200
        assert first.proc.poll() is None


def test_other_files_are_refused_with_the_exact_message(tmp_path: Path) -> None:
    regular = tmp_path / "file.sock"
    regular.write_text("precious")
    directory = tmp_path / "dir.sock"
    directory.mkdir()
    link = tmp_path / "link.sock"
    link.symlink_to(regular)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    paths = [regular, directory, link, blocker / "imaged.sock"]
    results = run_cli_many([(["--unix", str(path)], None) for path in paths])
    for path, result in zip(paths[:3], results, strict=False):
        assert result.returncode == 1, result
        last = result.stdout.splitlines()[-1]
        message = f"Refusing to overwrite existing non-socket at UNIX path: {path}"
        assert re.fullmatch(f"{LINE_TIME} FATAL {re.escape(message)}", last), result.stdout
    assert regular.read_text() == "precious" and directory.is_dir() and link.is_symlink()
    # other filesystem errors (here: the parent is a file) abort startup too
    assert results[3].returncode == 1
    assert re.search(f"{LINE_TIME} FATAL Error starting server ", results[3].stdout)
    assert blocker.read_text() == "x"


def test_socket_removed_on_forced_exit_too(tmp_path: Path) -> None:
    """Even when shutdown times out (a request in flight), the socket file goes."""
    path = str(tmp_path / "forced.sock")
    with Proc(["--unix", path, "--shutdown-timeout", "1"]) as proc:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.sendall(b"PUT /metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        # The head is in: the request is in flight, its body never ends.
        wait_until(lambda: read_by_peer(sock), "the server to read the request head")
        proc.send(signal.SIGTERM)
        assert proc.wait(10) == 1
        assert "WARN Timeout reached, forcing exit" in proc.log()
        sock.close()
    assert wait_gone(path, 0)
