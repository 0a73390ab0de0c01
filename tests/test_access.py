"""server/access.py's seam for caching.md: `seconds_left(request)` is the time left until a
verified `expires` (what `max-age` and `s-maxage` are capped at), read on an in-process
aiohttp server that runs the real middleware, over loopback HTTP."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from imaged.log import Logger
from imaged.server.access import access_middleware, seconds_left
from imaged.server.app import build_state
from imaged.server.state import STATE, State
from imaged.settings import Settings
from tests.access_support import KEY_NEW, TOKEN, signed

SIGNING = Settings(concurrency=1, signing_keys=(bytes.fromhex(KEY_NEW),), api_tokens=(TOKEN,))
LATER = 10**6  # seconds from now: past every expiry used here


async def report(request: web.Request) -> web.Response:
    later = time.time() + LATER
    return web.json_response({"left": seconds_left(request), "later": seconds_left(request, later)})


Serve = Callable[[Settings], TestServer]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    started: list[tuple[TestServer, State]] = []

    def make(settings: Settings) -> TestServer:
        state = build_state(settings, Logger())
        app = web.Application(middlewares=[access_middleware])
        app[STATE] = state
        app.router.add_get("/transform", report)
        server = TestServer(app, host="127.0.0.1")
        started.append((server, state))
        return server

    yield make
    for server, state in started:
        await server.close()
        state.engine.close()


async def ask(server: TestServer, target: str, **headers: str) -> tuple[int, object]:
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}{target}"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        if response.status != 200:
            return response.status, await response.text()
        return response.status, await response.json()


async def test_seconds_left_until_a_verified_expiry(serve: Serve) -> None:
    server = serve(SIGNING)
    expires = int(time.time()) + 600
    before = int(time.time())
    status, body = await ask(server, signed(f"/transform?width=1&expires={expires}"))
    after = int(time.time())
    assert status == 200 and isinstance(body, dict)
    assert expires - after <= body["left"] <= expires - before
    assert body["later"] == 0  # once due: 0, never negative
    assert await ask(server, signed("/transform?expires=1")) == (403, "signature expired")


@pytest.mark.parametrize(
    ("settings", "target", "headers"),
    [
        (SIGNING, signed("/transform?width=1"), {}),  # signed without expires
        (SIGNING, "/transform?expires=99", {"Authorization": f"Bearer {TOKEN}"}),  # a token
        (dataclasses.replace(SIGNING, signing_keys=None), "/transform?expires=1", {}),  # off
    ],
    ids=["no-expires", "token", "signing-off"],
)
async def test_no_expiry_applies(
    serve: Serve, settings: Settings, target: str, headers: dict[str, str]
) -> None:
    assert await ask(serve(settings), target, **headers) == (200, {"left": None, "later": None})
