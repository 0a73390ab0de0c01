"""The one place where exceptions become HTTP responses (http-api.md, Error model).

The connection (`server/connection.py`) answers the errors aiohttp raises outside the
application with the same helpers, so every error body is built here.
"""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from imaged.errors import AccessDenied, ImagedError, ServerBusy, StrictMetadataError
from imaged.log import Logger
from imaged.server.body import MALFORMED_BODY, too_large
from imaged.server.requestid import stamp
from imaged.server.state import STATE

TEXT = "text/plain"
JSON = "application/json"
INTERNAL_ERROR = "500 Internal server error"


def status_text(status: int) -> str:
    """The body of a bare protocol error: `404 Not Found`, `417 Expectation Failed`, …"""
    return f"{status} {HTTPStatus(status).phrase}"


def text_response(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type=TEXT, charset="utf-8")


def json_response(body: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=body, content_type=JSON, charset="utf-8")


def internal_error(
    logger: Logger, request: web.BaseRequest, exc: BaseException | None
) -> web.Response:
    """A real server fault: logged with the request id (also in the `X-Request-Id` response
    header), answered 500 without any detail."""
    response = text_response(500, INTERNAL_ERROR)
    stamp(request, response)  # assigns the id first where no middleware did
    logger.error("internal error", method=request.method, path=request.raw_path, err=exc)
    return response


def error_response(exc: ImagedError) -> web.Response:
    if isinstance(exc, StrictMetadataError):
        return json_response(exc.message, exc.status)
    response = text_response(exc.status, exc.message)
    if isinstance(exc, ServerBusy):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, AccessDenied):
        response.headers.update(exc.headers)
    if exc.status in (408, 413):
        response.force_close()  # the rest of the body is not read
    return response


def _http_exception_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    if exc.status in (404, 405):  # no 405 is ever produced
        return text_response(404, status_text(404))
    if exc.status == 413:
        return error_response(too_large(request.app[STATE].settings.body_limit))
    return text_response(exc.status, f"{exc.status} {exc.reason}")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Maps deliberate errors to their text, unknown routes to 404, a client that broke
    its request to 400, anything else to a logged 500."""
    try:
        return await handler(request)
    except ImagedError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        return _http_exception_response(request, exc)
    except (ConnectionError, HttpProcessingError, RequestPayloadError):  # client-side breakage
        response = text_response(400, MALFORMED_BODY)
        response.force_close()
        return response
    except Exception as exc:
        return internal_error(request.app[STATE].logger, request, exc)
