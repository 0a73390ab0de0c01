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
from imaged.errors import BadRequest
from imaged.jsonfmt import dumps
from imaged.params.query import strict_text, warnings_header
from imaged.server.errors import JSON
from imaged.server.state import STARTED
from imaged.timing import elapsed_ms

JSON_CONTENT_TYPE = f"{JSON}; charset=utf-8"


@dataclass(frozen=True)
class Rendered:
    """A successful operation's response, independent of the request that asked for it.

    `warnings` were found while processing: what only the image could tell about the
    request (an animation into a still format, animation.md), which strict mode refuses
    (`strict_refuses`), or a notice such as metadata's ignored EXIF block, shown in both
    modes."""

    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()  # e.g. X-Image-Width, X-Image-Height
    warnings: tuple[ParamWarning, ...] = ()
    strict_refuses: bool = False


async def render_transform(engine: Engine, data: bytes, options: TransformOptions) -> Rendered:
    result = await engine.transform(data, options)
    headers = [("X-Image-Width", str(result.width)), ("X-Image-Height", str(result.height))]
    if result.frames > 1:
        headers.append(("X-Image-Frames", str(result.frames)))
    mime = MIME_TYPES[result.format]
    return Rendered(result.data, mime, tuple(headers), result.warnings, strict_refuses=True)


async def render_metadata(engine: Engine, data: bytes, options: MetadataOptions) -> Rendered:
    result = await engine.metadata(data, options)
    body = dumps(result.fields).encode()
    return Rendered(body, JSON_CONTENT_TYPE, warnings=tuple(result.warnings))


def ok_response(
    request: web.Request,
    rendered: Rendered,
    warnings: list[ParamWarning],
    strict: bool,
    *,
    negotiated: bool = False,
    extra: dict[str, str] | None = None,
) -> web.Response:
    """The 200 of `rendered` for this request, or its strict-mode 400. `warnings` are the
    request's own parameter warnings (in strict mode there were none, or it was a 400
    already); `extra` the caching headers of GET routes."""
    if strict and rendered.strict_refuses and rendered.warnings:
        raise BadRequest(strict_text(list(rendered.warnings)))
    headers = dict(rendered.headers)
    headers["X-Response-Time-Ms"] = str(elapsed_ms(request[STARTED]))
    all_warnings = [*([] if strict else warnings), *rendered.warnings]
    if all_warnings:
        headers["X-Imaged-Warnings"] = warnings_header(all_warnings)
    if negotiated:
        headers["Vary"] = "Accept"
    if extra:
        headers.update(extra)
    headers["Content-Type"] = rendered.content_type
    return web.Response(body=rendered.body, headers=headers)
