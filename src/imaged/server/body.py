"""Reading request bodies within `--body-limit` (http-api.md, Request bodies).

The read deadline and an early end of the body are enforced by the connection
(`server/connection.py`): reading then raises `RequestTimeout` (408) or `BadRequest` (400).
"""

from __future__ import annotations

import re

from aiohttp import web

from imaged.errors import BadRequest, ImagedError, PayloadTooLarge

# RFC 9110 media-type: type "/" subtype *( OWS ";" OWS [ parameter ] ).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"'
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*(?:{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))?)*[ \t]*"
)
# The client-visible texts of body failures, wherever they are detected: here, in the
# connection (`server/connection.py`) or in aiohttp (`server/errors.py`).
INCOMPLETE = "request body is shorter than its Content-Length"
INCOMPLETE_CHUNKED = "request body is incomplete"
MALFORMED_BODY = "request body is incomplete or malformed"
MALFORMED_TYPE = "malformed Content-Type header"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")


def check_declared_length(request: web.BaseRequest, limit: int) -> None:
    """Refuse a declared Content-Length over the limit before reading anything."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)


def check_content_type(request: web.BaseRequest) -> None:
    """A Content-Type header, if present, must be one well-formed media type (else 400)."""
    values = request.headers.getall("Content-Type", [])
    if not values:
        return
    if len(values) > 1 or not _MEDIA_TYPE.fullmatch(values[0].strip(" \t")):
        raise BadRequest(MALFORMED_TYPE)


def body_is_missing(request: web.BaseRequest) -> bool:
    """No Content-Type and no body at all (http-api.md, Request bodies)."""
    if "Content-Type" in request.headers:
        return False
    if "Transfer-Encoding" in request.headers:
        return False
    return not request.content_length


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The whole body; 413 as soon as it exceeds `limit`, 400 if it ends early, 408 past
    the body deadline."""
    check_declared_length(request, limit)
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            chunk = await request.content.readany()
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ImagedError:
        raise
    except Exception as exc:  # aiohttp payload errors: bad chunked framing, reset, …
        if isinstance(exc, ConnectionError | OSError | ValueError) or type(
            exc
        ).__module__.startswith("aiohttp"):
            raise BadRequest(MALFORMED_BODY) from exc
        raise
    if request.content_length is not None and total < request.content_length:
        raise BadRequest(INCOMPLETE)
    return b"".join(chunks)


async def read_image_body(
    request: web.BaseRequest, limit: int, multipart_is_missing: bool
) -> bytes | None:
    """The upload of PUT /transform and /metadata; None when the body is "missing"."""
    if body_is_missing(request):
        return None
    if multipart_is_missing and "multipart/form-data" in request.headers.get("Content-Type", ""):
        await read_body(request, limit)  # drain within the limits; it still counts as missing
        return None
    return await read_body(request, limit)
