"""Per-request records: the debug `request` line (config.md, Logging), and, once the
response is written, the HTTP metrics and the `--access-log` line (observability.md).

`request_log_middleware` is the outermost middleware: it assigns the request id (so every
later log line of the request carries it), stamps the start time (`STARTED`, which
`X-Response-Time-Ms` counts from) and sees the final status of every response the application
gives, errors included (`error_middleware` inside it turns every failure into a response).
The debug line keeps its 0.2.3 form: `method`, `path` (the target including the query
string), `status` and `duration` (integer ms).

What is known only after the response is written — its body bytes sent, the time to its end —
comes from aiohttp's access-log hook (`AbstractAccessLogger`), which the connection calls for
every response it finishes, including the errors aiohttp answers outside the application.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler

from imaged.server.metrics import route_label
from imaged.server.requestid import request_id
from imaged.server.state import STARTED, STATE, State
from imaged.timing import elapsed_ms

UNIX_PEER = "unix"  # the `remote` of a request over a unix socket


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id(request)
    request[STARTED] = time.monotonic()
    response = await handler(request)
    request.app[STATE].logger.debug(
        "request",
        method=request.method,
        path=request.raw_path,
        status=response.status,
        duration=elapsed_ms(request[STARTED]),
    )
    return response


def _body_bytes_sent(request: web.BaseRequest, response: web.StreamResponse) -> int:
    if request.method == "HEAD" or not response.prepared:
        return 0
    return response.content_length or 0


def request_done(
    state: State, request: web.BaseRequest, response: web.StreamResponse, seconds: float
) -> None:
    """A response was written (or the client left while it was): record it."""
    route = route_label(request.path)
    bytes_in = request.content.total_bytes
    bytes_out = _body_bytes_sent(request, response)
    state.metrics.request_done(route, request.method, response.status, seconds, bytes_in, bytes_out)
    if state.settings.access_log:
        # Never the query string: it carries source URLs and signatures.
        state.logger.info(
            "request",
            request_id=request_id(request),
            method=request.method,
            route=route,
            status=response.status,
            duration_ms=elapsed_ms(0.0, seconds),
            bytes_in=bytes_in,
            bytes_out=bytes_out,
            remote=request.remote or UNIX_PEER,
        )


def finished_hook(state: State) -> type[AbstractAccessLogger] | None:
    """The access-logger class the connections are given, or None when neither metrics nor
    the access log want finished requests (then aiohttp does not even time them)."""
    if not (state.metrics.enabled or state.settings.access_log):
        return None

    class RequestFinished(AbstractAccessLogger):
        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            request_done(state, request, response, time)

    return RequestFinished


#: aiohttp times requests only for a connection that has an access logger object; ours never
#: writes to it (the hook above logs through imaged's logger).
HOOK_LOGGER = logging.getLogger("imaged.requests")
