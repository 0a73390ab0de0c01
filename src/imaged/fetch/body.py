"""Reading a fetched response body under the size limit (fetch-and-security.md, Body reading).

Bodies are requested with `Accept-Encoding: identity` and never decoded, so the bytes
counted against `Content-Length` and the limit are the bytes that arrive.
"""

from __future__ import annotations

import re

import aiohttp
from aiohttp.http_exceptions import ContentLengthError

from imaged.errors import FetchError, FetchTooLarge

_DECIMAL = re.compile(r"[0-9]+")
_SAFE_INTEGER = 2**53 - 1


def declared_length(value: str | None) -> int | None:
    """`Content-Length` when it is a decimal integer within the safe-integer range."""
    if value is None or not _DECIMAL.fullmatch(value.strip()):
        return None
    length = int(value.strip())
    return length if length <= _SAFE_INTEGER else None


def too_large(limit: int) -> FetchError:
    return FetchTooLarge(f"response body size limit of {limit} bytes exceeded", 400)


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or a FetchError: 400 over the limit (from `Content-Length` before
    reading, else as soon as the running total passes it), 502 for a short or broken body."""
    declared = declared_length(response.headers.get("Content-Length"))
    if declared is not None and declared > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in response.content.iter_any():
            total += len(chunk)
            if total > limit or (declared and total > declared):
                raise too_large(limit)
            chunks.append(chunk)
    except aiohttp.ClientPayloadError as exc:
        if declared and total < declared and isinstance(exc.__cause__, ContentLengthError):
            raise FetchError(
                f"received {total} bytes but Content-Length was {declared}", 502
            ) from exc
        raise FetchError("error reading response body", 502) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise FetchError("error reading response body", 502) from exc
    if declared and total < declared:
        raise FetchError(f"received {total} bytes but Content-Length was {declared}", 502)
    return b"".join(chunks)
