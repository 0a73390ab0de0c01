"""One HTTP connection: aiohttp's protocol plus the read deadlines, plain-text protocol
errors and graceful draining that aiohttp does not provide (http-api.md, Server basics).

* Head deadline: once the first byte of a request head arrives, the whole head must be in
  within `head` seconds of the connection opening (or of the previous response); else the
  server writes `408` and closes. Before any byte arrives the keep-alive idle timeout
  applies (aiohttp's timer, which we then take over).
* Body deadline: the whole body must arrive within `body` seconds after the head; else
  reading the body raises `BodyTimeout` (408) in whoever reads it, handler or aiohttp's
  lingering drain.
* Draining (graceful shutdown): idle connections are closed at once; a connection with a
  request in flight keeps receiving its body and closes after its response.
* A request refused without reading its body (`CLOSE_UNREAD`, e.g. a 401 upload) closes
  the connection after its response instead of aiohttp's lingering drain of the body.

What aiohttp does not expose publicly (is a request in flight, which requests were just
parsed) comes from `server/aiohttp_internals.py`, the one module that reads its internals;
tests/e2e cover each rule.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader

from imaged.errors import BadRequest, ImagedError, RequestTimeout
from imaged.log import REQUEST_ID_HEADER, Logger, new_request_id
from imaged.server import aiohttp_internals as internals
from imaged.server.body import INCOMPLETE, INCOMPLETE_CHUNKED
from imaged.server.errors import internal_error, status_text, text_response
from imaged.server.requestid import stamp
from imaged.server.state import CLOSE_UNREAD

_REQUEST_TIMEOUT = b"request timeout: the request head was not received in time"


def request_timeout_response() -> bytes:
    """The 408 written when no complete head arrived (so no request exists): with a new
    request id, like every response."""
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(_REQUEST_TIMEOUT)}\r\n"
        f"{REQUEST_ID_HEADER}: {new_request_id()}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + _REQUEST_TIMEOUT


class BodyTimeout(RequestTimeout, TimeoutError):
    """The body deadline passed. A TimeoutError too, so aiohttp's lingering drain stops."""

    def __init__(self) -> None:
        super().__init__("request timeout: the request body was not received in time")


class IncompleteBody(BadRequest):
    """The client ended its side of the connection before the whole body arrived."""

    def __init__(self, chunked: bool) -> None:
        super().__init__(INCOMPLETE_CHUNKED if chunked else INCOMPLETE)


@dataclass(frozen=True)
class Deadlines:
    head: float
    body: float


class Connection(web.RequestHandler):
    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        deadlines: Deadlines,
        logger: Logger,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self.event_loop = loop
        self.deadlines = deadlines
        self.log = logger
        self.draining = False
        self._wait_start = loop.time()
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timers: set[asyncio.TimerHandle] = set()
        self._open_bodies: dict[StreamReader, bool] = {}  # payload → chunked
        self._peer_eof = False

    # --- deadlines ---------------------------------------------------------------------

    def _waiting_for_head(self) -> bool:
        return internals.waiting_for_request(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._wait_start = self.event_loop.time()
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        waiting = self._waiting_for_head()
        parsed_before = internals.parsed_count(self)
        super().data_received(data)
        parsed = internals.parsed_count(self) - parsed_before
        if parsed > 0:
            self._cancel_head_timer()
            for message, payload in internals.newest_requests(self, parsed):
                if not payload.is_eof():
                    self._arm_body_deadline(payload, bool(getattr(message, "chunked", False)))
        elif waiting and data and self._head_timer is None and self.transport is not None:
            # The first bytes of a head: the head deadline replaces the idle timeout.
            internals.cancel_idle_timer(self)
            when = self._wait_start + self.deadlines.head
            self._head_timer = self.event_loop.call_at(when, self._head_expired)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport is None or not self._waiting_for_head():
            return
        self.transport.write(request_timeout_response())
        self.force_close()

    def _arm_body_deadline(self, payload: StreamReader, chunked: bool) -> None:
        def expired() -> None:
            self._body_timers.discard(handle)
            self._open_bodies.pop(payload, None)
            if not payload.is_eof() and payload.exception() is None:
                payload.set_exception(BodyTimeout())

        def complete() -> None:
            handle.cancel()
            self._body_timers.discard(handle)
            self._open_bodies.pop(payload, None)

        handle = self.event_loop.call_at(self.event_loop.time() + self.deadlines.body, expired)
        self._body_timers.add(handle)
        self._open_bodies[payload] = chunked
        payload.on_eof(complete)

    def eof_received(self) -> bool | None:  # type: ignore[override]
        """The client closed its sending side. A body still expected is incomplete (400);
        the answer to a request in flight can still be written (plain TCP only)."""
        self._peer_eof = True
        for payload, chunked in list(self._open_bodies.items()):
            if not payload.is_eof() and payload.exception() is None:
                payload.set_exception(IncompleteBody(chunked))
        self._open_bodies.clear()
        if self._waiting_for_head() or self.transport is None:
            self.force_close()
            return None
        if self.transport.get_extra_info("sslcontext") is not None:
            return None  # TLS cannot stay half-open; asyncio closes the connection
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        for handle in self._body_timers:
            handle.cancel()
        self._body_timers.clear()
        self._open_bodies.clear()
        super().connection_lost(exc)

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        closing = self.draining or self._peer_eof
        if closing and isinstance(resp, web.StreamResponse) and not resp.prepared:
            resp.force_close()
        result = await super().finish_response(request, resp, start_time)
        if request.get(CLOSE_UNREAD) and not request.content.is_eof():
            self.force_close()  # the response is flushed first; the body is never drained
        self._wait_start = self.event_loop.time()
        return result

    # --- graceful shutdown -------------------------------------------------------------

    def drain(self) -> None:
        """Stop after the request in flight (if any); close now if idle. Idempotent."""
        self.draining = True
        if self._waiting_for_head():
            self.force_close()

    # --- errors aiohttp raises itself (bad requests, faults outside the middlewares) ---

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error response")
        if status >= 500:
            response = internal_error(self.log, request, exc)
        else:
            response = text_response(status, status_text(status))
            stamp(request, response)  # no application hook sees these responses
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        err = kwargs.get("exc_info")
        if isinstance(err, ImagedError):
            return  # our own payload errors (408/400) surfacing in aiohttp's lingering drain
        message = str(args[0]) % args[1:] if args else "connection error"
        self.log.error(message, err=err if isinstance(err, BaseException) else None)


class ConnectionFactory:
    """The protocol factory given to `loop.create_server`; `manager` is aiohttp's low-level
    server (it tracks connections and dispatches requests to the application)."""

    def __init__(
        self, manager: web.Server, deadlines: Deadlines, logger: Logger, **kwargs: Any
    ) -> None:
        self.manager = manager
        self.deadlines = deadlines
        self.logger = logger
        self.kwargs = kwargs

    def __call__(self) -> Connection:
        return Connection(
            self.manager,
            loop=asyncio.get_running_loop(),
            deadlines=self.deadlines,
            logger=self.logger,
            **self.kwargs,
        )

    @property
    def connections(self) -> list[Connection]:
        return [c for c in self.manager.connections if isinstance(c, Connection)]
