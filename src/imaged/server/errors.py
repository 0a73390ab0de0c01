"""The one place where exceptions become HTTP responses (http-api.md, Error model)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from imaged.errors import ImagedError, ServerBusy, StrictMetadataError
from imaged.server.connection import internal_error
from imaged.server.state import STATE

TEXT = "text/plain"
JSON = "application/json"
NOT_FOUND = "404 Not Found"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        response.force_close()  # the rest of the body is not read
    return response


def _http_exception_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    if exc.status in (404, 405):  # no 405 is ever produced
        return text_response(404, NOT_FOUND)
    if exc.status == 413:
        limit = request.app[STATE].settings.body_limit
        response = text_response(413, f"request body exceeds the limit of {limit} bytes")
        response.force_close()
        return response
    return text_response(exc.status, f"{exc.status} {exc.reason}")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Maps deliberate errors to their text, unknown routes to 404, a client that broke
    its request to 400, anything else to a logged 500; logs the debug `request` line."""
    state = request.app[STATE]
    started = time.monotonic()
    try:
        response = await handler(request)
    except ImagedError as exc:
        response = error_response(exc)
    except web.HTTPException as exc:
        response = _http_exception_response(request, exc)
    except (ConnectionError, HttpProcessingError, RequestPayloadError):  # client-side breakage
        response = text_response(400, "request body is incomplete or malformed")
        response.force_close()
    except Exception as exc:
        response = internal_error(state.logger, request, exc)
    state.logger.debug(
        "request",
        method=request.method,
        path=request.raw_path,
        status=response.status,
        duration=int((time.monotonic() - started) * 1000 + 0.5),  # half-up
    )
    return response
