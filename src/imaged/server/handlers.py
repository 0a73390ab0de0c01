"""Route handlers: thin glue from request to validated options to engine to response.

The GET routes validate and hand over to `Caching.serve` (server/caching.py), where the rest
of their flow — key, result cache, coalescing, fetch, ETag, engine, 304 or 200 — is one
function; the PUT routes render and answer directly, with no caching headers.
"""

from __future__ import annotations

import platform

from aiohttp import web

from imaged import __version__
from imaged.engine import vips
from imaged.engine.options import MetadataOptions, ParamWarning
from imaged.errors import BadRequest, StrictMetadataError
from imaged.jsonfmt import dumps
from imaged.params.kinds import METADATA_ROUTE, TRANSFORM_ROUTE
from imaged.params.metadata import parse_metadata_query
from imaged.params.query import (
    QueryDict,
    is_strict,
    parse_query_string,
    strict_json,
    strict_text,
    value_text,
)
from imaged.params.transform import ParsedTransform, parse_transform_query
from imaged.server.body import read_image_body
from imaged.server.caching import CACHING, GetJob
from imaged.server.errors import json_response, text_response
from imaged.server.output import Rendered, ok_response, render_metadata, render_transform
from imaged.server.state import State, get_state

MISSING_BODY = "image data must be provided in the request body"
MISSING_URL = "missing 'url' query parameter"
READY = "ready"
SHUTTING_DOWN = "shutting down"


def _query(request: web.Request) -> QueryDict:
    return parse_query_string(request.rel_url.raw_query_string)


async def healthz(request: web.Request) -> web.Response:
    codecs = get_state(request).engine.codecs
    body = {
        "version": __version__,
        "runtime": f"Python {platform.python_version()}",
        "pyvips": vips.pyvips_version(),
        "vips": vips.vips_version(),
        "decoders": list(codecs.decoders),
        "encoders": list(codecs.encoders),
    }
    return json_response(dumps(body))


async def readyz(request: web.Request) -> web.Response:
    """200 while the server accepts work; 503 from the stop signal on, so load balancers
    drain the instance before it stops (observability.md)."""
    if get_state(request).ready:
        return text_response(200, READY)
    return text_response(503, SHUTTING_DOWN)


async def _upload(request: web.Request, state: State) -> bytes | None:
    return await read_image_body(
        request, state.settings.body_limit, multipart_is_missing=state.settings.enable_pipeline
    )


def _source_url(values: QueryDict) -> str:
    """The `url` value; a repeated `url` is a list, joined with `,` like every list value."""
    url = value_text(values.get("url") or "")
    if not url:
        raise BadRequest(MISSING_URL)
    return url


# --- /transform -------------------------------------------------------------------------


def _parse_transform(request: web.Request, state: State, values: QueryDict) -> ParsedTransform:
    accept = ",".join(request.headers.getall("Accept", []))
    parsed = parse_transform_query(values, accept, state.settings.dimension_limit)
    if is_strict(values) and parsed.warnings:
        raise BadRequest(strict_text(parsed.warnings))
    state.engine.codecs.check_encoder(parsed.options.format)
    return parsed


async def put_transform(request: web.Request) -> web.Response:
    state = get_state(request)
    data = await _upload(request, state)
    values = _query(request)
    parsed = _parse_transform(request, state, values)
    if data is None:
        raise BadRequest(MISSING_BODY)
    rendered = await render_transform(state.engine, data, parsed.options)
    strict = is_strict(values)
    return ok_response(request, rendered, parsed.warnings, strict, negotiated=parsed.negotiated)


async def get_transform(request: web.Request) -> web.Response:
    state = get_state(request)
    values = _query(request)
    url = _source_url(values)
    parsed = _parse_transform(request, state, values)
    engine, options = state.engine, parsed.options

    async def render(data: bytes) -> Rendered:
        return await render_transform(engine, data, options)

    strict = is_strict(values)
    job = GetJob(TRANSFORM_ROUTE, url, options, render, parsed.warnings, strict, parsed.negotiated)
    return await request.app[CACHING].serve(request, job)


# --- /metadata --------------------------------------------------------------------------


def _parse_metadata(values: QueryDict) -> tuple[MetadataOptions, list[ParamWarning]]:
    """The options and the warnings; the strict 400 (JSON) comes first."""
    options, warnings = parse_metadata_query(values)
    if is_strict(values) and warnings:
        raise StrictMetadataError(strict_json(warnings))
    return options, warnings


async def put_metadata(request: web.Request) -> web.Response:
    state = get_state(request)
    data = await _upload(request, state)
    if data is None:
        raise BadRequest(MISSING_BODY)
    values = _query(request)
    options, warnings = _parse_metadata(values)
    rendered = await render_metadata(state.engine, data, options)
    return ok_response(request, rendered, warnings, is_strict(values))


async def get_metadata(request: web.Request) -> web.Response:
    state = get_state(request)
    values = _query(request)
    url = _source_url(values)
    options, warnings = _parse_metadata(values)
    engine = state.engine

    async def render(data: bytes) -> Rendered:
        return await render_metadata(engine, data, options)

    job = GetJob(METADATA_ROUTE, url, options, render, warnings, is_strict(values))
    return await request.app[CACHING].serve(request, job)
