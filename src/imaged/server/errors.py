"""The one place where exceptions become HTTP responses (http-api.md, Error model)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from imaged.errors import ImagedError, ServerBusy, StrictMetadataError
from imaged.server.state import STATE

TEXT = "text/plain"
JSON = "application/json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_request_ids = itertools.count(1)


def text_response(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type=TEXT, charset="utf-8")


def json_response(body: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=body, content_type=JSON, charset="utf-8")


def error_response(exc: ImagedError) -> web.Response:
    if isinstance(exc, StrictMetadataError):
        return json_response(exc.message, exc.status)
    response = text_response(exc.status, exc.message)
    if isinstance(exc, ServerBusy):
        response.headers["Retry-After"] = str(exc.retry_after)
    if exc.status in (408, 413):
        response.force_close()
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Maps deliberate errors to their text, unknown routes to 404, anything else to a
    logged 500; logs the per-request debug line."""
    state = request.app[STATE]
    started = time.monotonic()
    try:
        response = await handler(request)
    except ImagedError as exc:
        response = error_response(exc)
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            response = text_response(404, "404 Not Found")
        elif exc.status == 413:
            response = text_response(
                413, f"request body exceeds the limit of {state.settings.body_limit} bytes"
            )
            response.force_close()
        else:
            response = text_response(exc.status, exc.text or exc.reason)
    except Exception as exc:
        request_id = next(_request_ids)
        state.logger.error(
            "internal error",
            request_id=request_id,
            method=request.method,
            path=request.path_qs,
            err=exc,
        )
        response = text_response(500, "500 Internal server error")
    state.logger.debug(
        "request",
        method=request.method,
        path=request.raw_path,
        status=response.status,
        duration=round((time.monotonic() - started) * 1000),
    )
    return response
