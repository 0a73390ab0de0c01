"""PUT /pipeline: body forms → config → executor → JSON. Placeholder."""

from __future__ import annotations

from aiohttp import web

from imaged.errors import BadRequest


async def put_pipeline(request: web.Request) -> web.Response:
    raise BadRequest("Content-Type must be application/json or multipart/form-data")
