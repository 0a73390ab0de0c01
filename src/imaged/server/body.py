"""Reading request bodies within `--body-limit` and the body deadline (http-api.md)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from imaged.errors import BadRequest, PayloadTooLarge, RequestTimeout

BODY_DEADLINE_SECONDS = 60.0
_CHUNK = 256 * 1024


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")


def check_declared_length(request: web.Request, limit: int) -> None:
    """Refuse a declared Content-Length over the limit before reading anything."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)


def body_is_missing(request: web.Request) -> bool:
    """No Content-Type and no body at all (http-api.md, Request bodies)."""
    if "Content-Type" in request.headers:
        return False
    if "Transfer-Encoding" in request.headers:
        return False
    return not request.content_length


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 past `limit`, 400 if it ends early, 408 past the deadline."""
    check_declared_length(request, limit)
    chunks: list[bytes] = []
    total = 0
    try:
        async with asyncio.timeout(BODY_DEADLINE_SECONDS):
            while True:
                chunk = await request.content.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise too_large(limit)
                chunks.append(chunk)
    except TimeoutError as exc:
        raise RequestTimeout("request body not received in time") from exc
    except (ConnectionError, OSError, ValueError) as exc:
        raise BadRequest("request body is incomplete or malformed") from exc
    except Exception as exc:  # aiohttp payload errors (e.g. body shorter than Content-Length)
        if type(exc).__module__.startswith("aiohttp"):
            raise BadRequest("request body is incomplete or malformed") from exc
        raise
    if request.content_length is not None and total < request.content_length:
        raise BadRequest("request body is shorter than its Content-Length")
    return b"".join(chunks)


async def read_image_body(
    request: web.Request, limit: int, multipart_is_missing: bool
) -> bytes | None:
    """The upload of PUT /transform and /metadata; None when the body is "missing"."""
    if body_is_missing(request):
        return None
    if multipart_is_missing and "multipart/form-data" in request.headers.get("Content-Type", ""):
        await read_body(request, limit)  # drain within the limits; it still counts as missing
        return None
    return await read_body(request, limit)
