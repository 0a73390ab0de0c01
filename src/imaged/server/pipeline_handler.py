"""PUT /pipeline: body form → config JSON → validation → executor → JSON (pipeline.md).

The body form is chosen by a case-sensitive substring test of `Content-Type`. Multipart
bodies are parsed as a stream with aiohttp's reader: the `config` field (at most 1 MiB is
kept, like the original's parser), the `file` file part (at most `--body-limit`), every
other part drained and discarded wherever it appears. The whole body stays within
`--body-limit` (413 past it, even when chunked); the connection enforces the body deadline
(408); anything the multipart parser cannot make sense of is a 400.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.helpers import parse_mimetype
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

from imaged.errors import BadRequest, ImagedError
from imaged.jsonfmt import dumps, escape_surrogates
from imaged.params.pipeline import parse_json, parse_pipeline_config
from imaged.server.body import read_body, too_large
from imaged.server.errors import json_response
from imaged.server.state import get_state

CONFIG_FIELD_LIMIT = 1024 * 1024  # longer config values are truncated (then invalid JSON)
_CHUNK = 64 * 1024

WRONG_CONTENT_TYPE = "Content-Type must be application/json or multipart/form-data"
MISSING_CONFIG = "missing 'config' part in multipart request"
INVALID_CONFIG = "invalid JSON in 'config' part"
MISSING_FILE = "missing 'file' part in multipart request"
INVALID_BODY = "invalid JSON in request body"
BROKEN_MULTIPART = "malformed multipart/form-data body"


@dataclass
class _Form:
    config: bytes | None = None
    file: bytes | None = None


class _MultipartForm:
    """Reads one multipart body into `_Form`, enforcing the byte limits as it goes."""

    def __init__(self, request: web.Request, limit: int) -> None:
        self.request = request
        self.limit = limit
        self.form = _Form()

    def _check_total(self) -> None:
        # Bytes received so far, whether or not a part has consumed them yet.
        if self.request.content.total_bytes > self.limit:
            raise too_large(self.limit)

    async def read(self) -> _Form:
        mimetype = parse_mimetype(self.request.headers.get("Content-Type", ""))
        if mimetype.type != "multipart" or not mimetype.parameters.get("boundary"):
            raise BadRequest(f"{BROKEN_MULTIPART}: Content-Type without a boundary")
        reader = MultipartReader(self.request.headers, self.request.content)
        await self._read_parts(reader, top_level=True)
        return self.form

    async def _read_parts(self, reader: MultipartReader, top_level: bool) -> None:
        while True:
            part = await reader.next()
            self._check_total()
            if part is None:
                return
            if isinstance(part, MultipartReader):  # a nested multipart: never ours
                await self._read_parts(part, top_level=False)
                continue
            name, filename = _disposition(part)
            if top_level and name == "config" and filename is None:
                self.form.config = await self._read_part(part, CONFIG_FIELD_LIMIT, truncate=True)
            elif top_level and name == "file" and filename is not None:
                self.form.file = await self._read_part(part, self.limit, truncate=False)
            else:
                await self._read_part(part, 0, truncate=True)

    async def _read_part(self, part: BodyPartReader, keep: int, truncate: bool) -> bytes:
        """The part's raw bytes, up to `keep` of them; past `keep` the rest is drained
        (`truncate`) or the request is refused with 413."""
        chunks: list[bytes] = []
        size = 0
        while not part.at_eof():
            chunk = await part.read_chunk(_CHUNK)
            self._check_total()
            if size < keep:
                chunks.append(chunk[: keep - size])
            size += len(chunk)
            if size > keep and not truncate:
                raise too_large(self.limit)
        return b"".join(chunks)


def _disposition(part: BodyPartReader) -> tuple[str | None, str | None]:
    """(name, filename) of a part; a part with a `filename` parameter is a file part."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiohttp warns about malformed headers
        _, params = parse_content_disposition(part.headers.get("Content-Disposition"))
    return (
        content_disposition_filename(params, "name"),
        content_disposition_filename(params, "filename"),
    )


async def _read_multipart(request: web.Request, limit: int) -> _Form:
    try:
        return await _MultipartForm(request, limit).read()
    except ImagedError:  # 413, and the connection's 408 / 400 for a late or short body
        raise
    except (ValueError, RuntimeError, AssertionError, ConnectionError, OSError) as exc:
        raise BadRequest(BROKEN_MULTIPART) from exc
    except Exception as exc:  # aiohttp's own parse and payload errors
        if type(exc).__module__.startswith("aiohttp"):
            raise BadRequest(BROKEN_MULTIPART) from exc
        raise


async def put_pipeline(request: web.Request) -> web.Response:
    state = get_state(request)
    runner = state.pipeline
    if runner is None:  # the route exists only with --enable-pipeline
        raise RuntimeError("pipeline route registered without a runner")
    limit = state.settings.body_limit
    content_type = request.headers.get("Content-Type", "")
    upload: bytes | None = None
    if "multipart/form-data" in content_type:
        form = await _read_multipart(request, limit)
        if not form.config:
            raise BadRequest(MISSING_CONFIG)
        try:
            config = parse_json(form.config)
        except ValueError as exc:
            raise BadRequest(INVALID_CONFIG) from exc
        if form.file is None:
            raise BadRequest(MISSING_FILE)
        upload = form.file
    elif "application/json" in content_type:
        body = await read_body(request, limit)
        try:
            config = parse_json(body)
        except ValueError as exc:
            raise BadRequest(INVALID_BODY) from exc
    else:
        raise BadRequest(WRONG_CONTENT_TYPE)

    started = time.monotonic()  # execution starts after body parsing (totalDurationMs)
    parsed = parse_pipeline_config(
        config,
        max_tasks=state.settings.max_pipeline_tasks,
        dimension_limit=state.settings.dimension_limit,
    )
    result = await runner.run(parsed, upload, started)
    return json_response(escape_surrogates(dumps(result)))
