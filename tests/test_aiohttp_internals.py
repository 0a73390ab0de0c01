"""The aiohttp internals imaged relies on (`server/aiohttp_internals.py`), checked against
the installed aiohttp: an upgrade that removes or changes one fails here, naming it.

The behaviour tests drive a real `web.RequestHandler` over a real socket pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from imaged.server import aiohttp_internals as internals
from tests.waiting import await_until


@dataclass
class Seen:
    """What the probe saw around each `data_received`."""

    waiting_before: bool
    parsed: int
    payloads: list[Any] = field(default_factory=list)


class Probe(web.RequestHandler):
    """Uses the internals exactly as `server/connection.py` does."""

    def __init__(self, manager: web.Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.seen: list[Seen] = []

    def data_received(self, data: bytes) -> None:
        waiting = internals.waiting_for_request(self)
        before = internals.parsed_count(self)
        super().data_received(data)
        parsed = internals.parsed_count(self) - before
        payloads = [payload for _, payload in internals.newest_requests(self, parsed)]
        if data:  # aiohttp also calls it with b"" to re-parse after a pause
            self.seen.append(Seen(waiting, parsed, payloads))


@dataclass
class Pair:
    handler: Probe
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    release: asyncio.Event


@contextlib.asynccontextmanager
async def connected() -> AsyncIterator[Pair]:
    """A `Probe` serving one end of a socket pair (on the running loop; an async fixture
    could run on another one), the client streams on the other."""
    release = asyncio.Event()

    async def handle(request: web.BaseRequest) -> web.Response:
        body = await request.read()
        await release.wait()
        return web.Response(text=f"got {len(body)}")

    loop = asyncio.get_running_loop()
    manager = web.Server(handle)
    server_sock, client_sock = socket.socketpair()
    _, handler = await loop.connect_accepted_socket(
        lambda: Probe(manager, loop=loop, keepalive_timeout=30.0), server_sock
    )
    assert isinstance(handler, Probe)
    reader, writer = await asyncio.open_connection(sock=client_sock)
    try:
        yield Pair(handler, reader, writer, release)
    finally:
        release.set()
        writer.close()
        await manager.shutdown(1.0)


def test_the_installed_aiohttp_has_every_hook() -> None:
    internals.check_hooks()


async def test_a_live_handler_has_every_attribute() -> None:
    async with connected() as pair:
        internals.check_handler(pair.handler)


async def test_requests_are_seen_parsed_then_in_flight_then_done() -> None:
    async with connected() as pair:
        handler = pair.handler
        await await_until(
            lambda: internals.waiting_for_request(handler), "waiting_for_request(handler)"
        )
        assert internals.parsed_count(handler) == 0
        pair.writer.write(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
        await await_until(lambda: len(handler.seen) == 1, "len(handler.seen) == 1")
        first = handler.seen[0]
        assert (first.waiting_before, first.parsed) == (True, 1)
        (payload,) = first.payloads
        assert not payload.is_eof()  # the body is still expected
        await await_until(
            lambda: not internals.waiting_for_request(handler), "not waiting_for_request(handler)"
        )
        pair.writer.write(b"cde")
        await await_until(lambda: len(handler.seen) == 2, "len(handler.seen) == 2")
        assert (handler.seen[1].waiting_before, handler.seen[1].parsed) == (False, 0)
        assert payload.is_eof()
        assert not internals.waiting_for_request(handler)  # the handler still holds it
        pair.release.set()
        response = await asyncio.wait_for(pair.reader.readuntil(b"\r\n\r\ngot 5"), 5)
        assert response.startswith(b"HTTP/1.1 200 OK")
        await await_until(
            lambda: internals.waiting_for_request(handler), "waiting_for_request(handler)"
        )
        assert internals.parsed_count(handler) == 1


async def test_pipelined_requests_are_all_returned_in_order() -> None:
    async with connected() as pair:
        pair.release.set()
        pair.writer.write(
            b"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
            b"PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nb"
        )
        await await_until(lambda: len(pair.handler.seen) == 1, "len(pair.handler.seen) == 1")
        seen = pair.handler.seen[0]
        assert seen.parsed == 2 and len(seen.payloads) == 2
        assert seen.payloads[0].is_eof() and not seen.payloads[1].is_eof()
        assert internals.newest_requests(pair.handler, 0) == []


async def test_cancel_idle_timer_cancels_aiohttps_keepalive_timer() -> None:
    async with connected() as pair:
        timer = pair.handler._keepalive_handle  # armed when the connection was made
        assert timer is not None and not timer.cancelled()
        internals.cancel_idle_timer(pair.handler)
        assert timer.cancelled()
        assert pair.handler._keepalive_handle is None


# --- the checks fail loudly --------------------------------------------------------------


@pytest.mark.parametrize("name", list(internals.ATTRIBUTES))
async def test_a_missing_attribute_is_named(name: str) -> None:
    async with connected() as pair:
        saved = getattr(pair.handler, name)
        delattr(pair.handler, name)
        try:
            with pytest.raises(internals.AiohttpInternalsChanged) as raised:
                internals.check_handler(pair.handler)
        finally:
            setattr(pair.handler, name, saved)
    message = str(raised.value)
    assert f"web.RequestHandler.{name} is gone" in message
    assert "aiohttp_internals.py" in message


@pytest.mark.parametrize(
    ("name", "value", "found"),
    [
        ("_waiter", "not a future", "str"),
        ("_request_count", 1.5, "float"),
        ("_messages", [], "list"),
    ],
)
async def test_an_attribute_of_another_type_is_named(name: str, value: object, found: str) -> None:
    async with connected() as pair:
        saved = getattr(pair.handler, name)
        setattr(pair.handler, name, value)
        try:
            with pytest.raises(internals.AiohttpInternalsChanged, match=f"{name} is a {found}"):
                internals.check_handler(pair.handler)
        finally:
            setattr(pair.handler, name, saved)


def test_a_changed_hook_is_named() -> None:
    class Renamed(web.RequestHandler):
        def finish_response(self, request: Any, response: Any, started: Any) -> Any:  # type: ignore[override]
            return None

    with pytest.raises(internals.AiohttpInternalsChanged) as raised:
        internals.check_hooks(Renamed)
    assert "finish_response() takes (self, request, response, started)" in str(raised.value)

    class Gone:
        pass

    with pytest.raises(internals.AiohttpInternalsChanged, match=r"connection_made\(\) is gone"):
        internals.check_hooks(Gone)
