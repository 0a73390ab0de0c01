"""The debug `request` line (config.md, Logging): one per request the application
answered, with `method`, `path` (the target including the query string), `status` and
`duration` (integer ms).

The outermost middleware, so it also stamps the request's start time (`STARTED`, which
`X-Response-Time-Ms` counts from) and sees the final status of every response, errors
included: `error_middleware` inside it turns every failure into a response.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from imaged.server.state import STARTED, STATE
from imaged.timing import elapsed_ms


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
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
