"""What an image route produces and how a 200 is assembled, for PUT and GET alike.

`Rendered` is the part of a response that depends only on the source and the options — body,
content type, output headers, warnings found while processing — so GET routes can share it
between coalesced requests and keep it in the result cache. Everything that depends on the
request (its own parameter warnings, `Vary`, `X-Response-Time-Ms`, caching headers) is added
per request by `ok_response`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from imaged.engine.core import Engine
from imaged.engine.formats import MIME_TYPES
from imaged.engine.options import MetadataOptions, ParamWarning, TransformOptions
from imaged.jsonfmt import dumps
from imaged.params.query import warnings_header
from imaged.server.errors import JSON
from imaged.server.state import STARTED
from imaged.timing import elapsed_ms

JSON_CONTENT_TYPE = f"{JSON}; charset=utf-8"


@dataclass(frozen=True)
class Rendered:
    """A successful operation's response, independent of the request that asked for it."""

    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()  # e.g. X-Image-Width, X-Image-Height
    warnings: tuple[ParamWarning, ...] = ()  # found while processing (a bad EXIF block)


async def render_transform(engine: Engine, data: bytes, options: TransformOptions) -> Rendered:
    result = await engine.transform(data, options)
    headers = (("X-Image-Width", str(result.width)), ("X-Image-Height", str(result.height)))
    return Rendered(result.data, MIME_TYPES[result.format], headers)


async def render_metadata(engine: Engine, data: bytes, options: MetadataOptions) -> Rendered:
    result = await engine.metadata(data, options)
    body = dumps(result.fields).encode()
    return Rendered(body, JSON_CONTENT_TYPE, warnings=tuple(result.warnings))


def ok_response(
    request: web.Request,
    rendered: Rendered,
    warnings: list[ParamWarning],
    *,
    negotiated: bool = False,
    extra: dict[str, str] | None = None,
) -> web.Response:
    """The 200: `rendered` plus this request's headers. `warnings` are the request's own
    parameter warnings (empty in strict mode); `extra` the caching headers of GET routes."""
    headers = dict(rendered.headers)
    headers["X-Response-Time-Ms"] = str(elapsed_ms(request[STARTED]))
    all_warnings = [*warnings, *rendered.warnings]
    if all_warnings:
        headers["X-Imaged-Warnings"] = warnings_header(all_warnings)
    if negotiated:
        headers["Vary"] = "Accept"
    if extra:
        headers.update(extra)
    headers["Content-Type"] = rendered.content_type
    return web.Response(body=rendered.body, headers=headers)
