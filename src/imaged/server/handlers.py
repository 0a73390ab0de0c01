"""Route handlers: thin glue from request to validated options to engine to response."""

from __future__ import annotations

import platform

from aiohttp import web

from imaged import __version__
from imaged.engine import vips
from imaged.engine.formats import MIME_TYPES
from imaged.engine.options import MetadataResult, ParamWarning, TransformResult
from imaged.errors import BadRequest, StrictMetadataError
from imaged.jsonfmt import dumps
from imaged.params.metadata import parse_metadata_query
from imaged.params.query import (
    QueryDict,
    is_strict,
    parse_query_string,
    strict_json,
    strict_text,
    value_text,
    warnings_header,
)
from imaged.params.transform import ParsedTransform, parse_transform_query
from imaged.server.body import read_image_body
from imaged.server.errors import json_response, text_response
from imaged.server.state import STARTED, State, get_state
from imaged.timing import elapsed_ms

MISSING_BODY = "image data must be provided in the request body"
MISSING_URL = "missing 'url' query parameter"
READY = "ready"
SHUTTING_DOWN = "shutting down"


def _response_time(request: web.Request) -> str:
    """The `X-Response-Time-Ms` value."""
    return str(elapsed_ms(request[STARTED]))


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


async def _fetch(state: State, url: str) -> bytes:
    assert state.fetcher is not None  # the GET routes exist only with fetching enabled
    return (await state.fetcher.fetch(url)).body


# --- /transform -------------------------------------------------------------------------


def _parse_transform(request: web.Request, state: State, values: QueryDict) -> ParsedTransform:
    accept = ",".join(request.headers.getall("Accept", []))
    parsed = parse_transform_query(values, accept, state.settings.dimension_limit)
    if is_strict(values) and parsed.warnings:
        raise BadRequest(strict_text(parsed.warnings))
    state.engine.codecs.check_encoder(parsed.options.format)
    return parsed


async def _transform_response(
    request: web.Request, state: State, data: bytes, parsed: ParsedTransform, strict: bool
) -> web.Response:
    result: TransformResult = await state.engine.transform(data, parsed.options)
    if strict and result.warnings:  # what only the image could tell (animation.md)
        raise BadRequest(strict_text(list(result.warnings)))
    headers = {
        "X-Image-Width": str(result.width),
        "X-Image-Height": str(result.height),
    }
    if result.frames > 1:
        headers["X-Image-Frames"] = str(result.frames)
    headers["X-Response-Time-Ms"] = _response_time(request)
    warnings = [*parsed.warnings, *result.warnings]
    if warnings and not strict:
        headers["X-Imaged-Warnings"] = warnings_header(warnings)
    if parsed.negotiated:
        headers["Vary"] = "Accept"
    return web.Response(body=result.data, content_type=MIME_TYPES[result.format], headers=headers)


async def put_transform(request: web.Request) -> web.Response:
    state = get_state(request)
    data = await _upload(request, state)
    values = _query(request)
    parsed = _parse_transform(request, state, values)
    if data is None:
        raise BadRequest(MISSING_BODY)
    return await _transform_response(request, state, data, parsed, is_strict(values))


async def get_transform(request: web.Request) -> web.Response:
    state = get_state(request)
    values = _query(request)
    url = _source_url(values)
    parsed = _parse_transform(request, state, values)
    data = await _fetch(state, url)
    return await _transform_response(request, state, data, parsed, is_strict(values))


# --- /metadata --------------------------------------------------------------------------


async def _metadata_response(
    request: web.Request, state: State, data: bytes, values: QueryDict
) -> web.Response:
    options, warnings = parse_metadata_query(values)
    strict = is_strict(values)
    if strict and warnings:
        raise StrictMetadataError(strict_json(warnings))
    result: MetadataResult = await state.engine.metadata(data, options)
    all_warnings: list[ParamWarning] = ([] if strict else warnings) + result.warnings
    response = json_response(dumps(result.fields))
    response.headers["X-Response-Time-Ms"] = _response_time(request)
    if all_warnings:
        response.headers["X-Imaged-Warnings"] = warnings_header(all_warnings)
    return response


async def put_metadata(request: web.Request) -> web.Response:
    state = get_state(request)
    data = await _upload(request, state)
    if data is None:
        raise BadRequest(MISSING_BODY)
    return await _metadata_response(request, state, data, _query(request))


async def get_metadata(request: web.Request) -> web.Response:
    state = get_state(request)
    values = _query(request)
    url = _source_url(values)
    _, warnings = parse_metadata_query(values)
    if is_strict(values) and warnings:
        raise StrictMetadataError(strict_json(warnings))
    data = await _fetch(state, url)
    return await _metadata_response(request, state, data, values)
