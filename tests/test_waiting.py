"""The tests' own waiting tools (tests/waiting.py, serverkit.read_by_peer): if they passed
vacuously, every test synchronised with them would too."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time

import pytest

from tests.serverkit import read_by_peer
from tests.waiting import await_until, wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "done", "three checks") == "done"


def test_wait_until_fails_naming_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0.2 s waiting for Godot"):
        wait_until(lambda: False, lambda: "Godot", timeout=0.2)
    assert time.monotonic() - started >= 0.2
    with pytest.raises(AssertionError):  # checked once even without time
        wait_until(lambda: None, "nothing", timeout=0)


async def test_await_until_lets_the_loop_run() -> None:
    done = asyncio.Event()
    asyncio.get_running_loop().call_soon(done.set)
    assert await await_until(done.is_set, "the callback")
    with pytest.raises(AssertionError, match="waiting for never"):
        await await_until(lambda: False, "never", timeout=0.05)


def _pair(kind: str) -> tuple[socket.socket, socket.socket]:
    if kind == "unix":
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        return client, listener.accept()[0]


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_read_by_peer_is_false_until_the_peer_has_read_everything(kind: str) -> None:
    client, server = _pair(kind)
    with client, server:
        assert read_by_peer(client)  # nothing sent yet
        client.sendall(b"x" * 1000)
        assert not read_by_peer(client)
        assert len(server.recv(600)) == 600
        assert not read_by_peer(client)
        wanted = 400
        while wanted:
            wanted -= len(server.recv(wanted))
        wait_until(lambda: read_by_peer(client), "the queues to empty", timeout=5)
