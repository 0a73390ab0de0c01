"""`X-Request-Id` (observability.md): every response carries one, and every log line of the
request carries it as `request_id`.

The id is assigned on first use — by the outermost middleware for requests the application
handles, by the connection for the errors aiohttp answers itself — and kept on the request;
assigning it also makes it the log context's id (`imaged.log`), so whatever the request's task
logs from then on carries it.
"""

from __future__ import annotations

from aiohttp import web

from imaged.log import REQUEST_ID_HEADER, accepted_request_id, set_request_id
from imaged.server.state import REQUEST_ID


def request_id(request: web.BaseRequest) -> str:
    """The request's id: the client's `X-Request-Id` when well-formed, else a new one."""
    assigned = request.get(REQUEST_ID)
    if assigned is None:
        assigned = accepted_request_id(request.headers.get(REQUEST_ID_HEADER))
        request[REQUEST_ID] = assigned
        set_request_id(assigned)
    return assigned


def stamp(request: web.BaseRequest, response: web.StreamResponse) -> None:
    response.headers[REQUEST_ID_HEADER] = request_id(request)


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Every response of the application, also those no middleware sees (an `Expect`
    answer)."""
    stamp(request, response)
