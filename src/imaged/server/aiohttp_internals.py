"""Every use of aiohttp beyond its documented API, in one place.

The read deadlines (`server/connection.py`) need to know what aiohttp's request loop is
doing, and aiohttp has no public way to ask: is the connection waiting for the next request
head, and which requests did the bytes just received complete? This module answers from
three private attributes of `web.RequestHandler`, and relies on the undocumented hooks the
connection overrides. Nothing else in imaged touches aiohttp internals.

aiohttp is pinned (pyproject.toml); `check_handler` and `check_hooks` verify every
assumption and `tests/test_aiohttp_internals.py` runs them and the behaviour behind them, so
an upgrade that removes or changes one fails there with a message naming it, not as a
subtle deadline bug in production.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.streams import StreamReader

# Private attributes read here: name → (expected type, what we use it for).
ATTRIBUTES: dict[str, tuple[tuple[type, ...], str]] = {
    "_waiter": (
        (asyncio.Future, type(None)),
        "the future the request loop awaits while no request is queued",
    ),
    "_request_count": ((int,), "the number of requests parsed on the connection"),
    "_messages": (
        (collections.deque,),
        "the parsed (message, payload) pairs not yet handled",
    ),
}

# Methods of `web.RequestHandler` that `Connection` overrides or calls: name → parameters.
HOOKS: dict[str, tuple[str, ...]] = {
    "connection_made": ("self", "transport"),
    "data_received": ("self", "data"),
    "eof_received": ("self",),
    "connection_lost": ("self", "exc"),
    "finish_response": ("self", "request", "resp", "start_time"),
    "handle_error": ("self", "request", "status", "exc", "message"),
    "log_exception": ("self", "args", "kw"),
    "keep_alive": ("self", "val"),
    "force_close": ("self",),
}


class AiohttpInternalsChanged(RuntimeError):
    """aiohttp no longer has an internal that imaged relies on."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(
            f"aiohttp {aiohttp.__version__}: web.RequestHandler.{what} {problem}; "
            "update src/imaged/server/aiohttp_internals.py"
        )


def waiting_for_request(handler: web.RequestHandler) -> bool:
    """No request in flight: the request loop waits for the next head (or, on a new
    connection, has not even started: TLS may deliver data right away)."""
    waiter: asyncio.Future[None] | None = handler._waiter
    if waiter is not None:
        return not waiter.done()
    return parsed_count(handler) == 0


def parsed_count(handler: web.RequestHandler) -> int:
    """How many requests have been parsed on this connection so far."""
    count: int = handler._request_count
    return count


def newest_requests(handler: web.RequestHandler, count: int) -> list[tuple[Any, StreamReader]]:
    """The (message, payload) pairs of the last `count` parsed requests; call it right after
    `data_received` parsed them (they are still queued: the loop has not run yet)."""
    if count <= 0:
        return []
    queued: collections.deque[tuple[Any, StreamReader]] = handler._messages
    return list(queued)[-count:]


def cancel_idle_timer(handler: web.RequestHandler) -> None:
    """Stop aiohttp's keep-alive idle timer (it is re-armed after the next response).

    `keep_alive(True)` is public, but cancelling the timer is a side effect of it; the mode
    it sets is the one the connection already has while it waits for a head (a connection
    that is not kept alive is closed before it could wait)."""
    handler.keep_alive(True)


def check_handler(handler: web.RequestHandler) -> None:
    """Raise `AiohttpInternalsChanged` unless `handler` has every attribute read here."""
    for name, (types, meaning) in ATTRIBUTES.items():
        try:
            value = getattr(handler, name)
        except AttributeError:
            raise AiohttpInternalsChanged(name, f"is gone ({meaning})") from None
        if not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in types)
            raise AiohttpInternalsChanged(
                name, f"is a {type(value).__name__}, expected {expected} ({meaning})"
            )


def check_hooks(cls: type = web.RequestHandler) -> None:
    """Raise `AiohttpInternalsChanged` unless every hook the connection uses still exists
    with the parameters it is called or overridden with."""
    for name, parameters in HOOKS.items():
        method = getattr(cls, name, None)
        if not callable(method):
            raise AiohttpInternalsChanged(f"{name}()", "is gone")
        found = tuple(inspect.signature(method).parameters)
        if found != parameters:
            raise AiohttpInternalsChanged(
                f"{name}()", f"takes ({', '.join(found)}), expected ({', '.join(parameters)})"
            )
