"""Listening internals over real sockets, in-process: socket binding, unix-socket path
hygiene, TLS loading errors, and the 500 path (a real fault inside a handler is answered
`500 Internal server error` with a request id and logged with its stack)."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import stat
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from imaged.log import Logger
from imaged.server.app import build_state, create_app
from imaged.server.listen import start
from imaged.server.sockets import (
    StartupError,
    bind_tcp,
    bind_unix,
    prepare_unix_path,
    remove_unix_socket,
    tls_context,
)
from imaged.settings import Settings
from tests.serverkit import free_port, ipv6_loopback


def test_localhost_binds_both_loopbacks() -> None:
    port = free_port()
    sockets = bind_tcp("localhost", port)
    try:
        addresses = {s.getsockname()[0] for s in sockets}
        assert addresses == ({"127.0.0.1", "::1"} if ipv6_loopback() else {"127.0.0.1"})
        for sock in sockets:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
            if sock.family == socket.AF_INET6:
                assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    finally:
        for sock in sockets:
            sock.close()


def test_bind_failure_closes_what_was_bound() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            bind_tcp("127.0.0.1", port)


def test_unix_path_preparation(tmp_path: Path) -> None:
    nested = tmp_path / "x" / "y" / "s.sock"
    prepare_unix_path(str(nested))
    assert nested.parent.is_dir() and not nested.exists()

    stale = tmp_path / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(stale))
    leftover.close()
    prepare_unix_path(str(stale))
    assert not stale.exists()

    live = bind_unix(str(tmp_path / "live.sock"))
    live.listen()
    try:
        with pytest.raises(StartupError, match="in use"):
            prepare_unix_path(str(tmp_path / "live.sock"))
        assert stat.S_ISSOCK(os.lstat(tmp_path / "live.sock").st_mode)
    finally:
        live.close()

    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(StartupError) as info:
        prepare_unix_path(str(regular))
    assert (
        info.value.message == f"Refusing to overwrite existing non-socket at UNIX path: {regular}"
    )


def test_remove_unix_socket_only_removes_sockets(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_text("x")
    remove_unix_socket(str(regular))
    remove_unix_socket(str(tmp_path / "missing"))
    remove_unix_socket(None)
    assert regular.exists()
    sock = bind_unix(str(tmp_path / "s.sock"))
    sock.close()
    remove_unix_socket(str(tmp_path / "s.sock"))
    assert not (tmp_path / "s.sock").exists()


def test_tls_loading_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("nope")
    with pytest.raises(StartupError) as info:
        tls_context(Settings(tls_cert=str(garbage), tls_key=str(garbage)))
    assert info.value.message == "Cannot load the TLS certificate and key"
    assert info.value.fields["cert"] == str(garbage)
    assert tls_context(Settings()) is None


async def test_unexpected_exception_is_a_logged_500_with_request_id() -> None:
    stream = io.StringIO()
    logger = Logger("json", "info", stream)
    settings = Settings(host="127.0.0.1", port=free_port(), concurrency=1)
    app = create_app(build_state(settings, logger))

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a real server fault")

    app.router.add_get("/boom", boom)
    listener = await start(settings, logger, app)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}") as client:
            response = await client.get("/boom?x=1")
            healthz = await client.get("/healthz")
    finally:
        await listener.stop(5)
    assert response.status_code == 500
    assert response.text == "500 Internal server error"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert healthz.status_code == 200  # the server goes on
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1
    error = errors[0]
    assert error["msg"] == "internal error" and error["path"] == "/boom?x=1"
    assert re.fullmatch("[0-9a-f]{32}", response.headers["x-request-id"])
    assert error["request_id"] == response.headers["x-request-id"]
    assert list(error)[:3] == ["level", "time", "request_id"]
    assert error["err"]["type"] == "RuntimeError"
    assert error["err"]["message"] == "a real server fault"
    assert "raise RuntimeError" in error["err"]["stack"]
    assert "Traceback" not in response.text
