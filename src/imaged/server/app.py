"""The aiohttp application: state, middlewares and the route table (http-api.md, Routes)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from imaged.engine.core import Engine
from imaged.engine.formats import Codecs
from imaged.engine.options import Limits
from imaged.log import Logger
from imaged.server import handlers
from imaged.server.body import check_declared_length
from imaged.server.errors import error_middleware
from imaged.server.state import STATE, State
from imaged.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def start_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stamps the start time and refuses an over-limit declared body before any handler."""
    request["started"] = time.monotonic()
    if request.method in ("PUT", "POST"):
        check_declared_length(request, request.app[STATE].settings.body_limit)
    return await handler(request)


def build_state(settings: Settings, logger: Logger, codecs: Codecs | None = None) -> State:
    engine = Engine(
        Limits(settings.pixel_limit, settings.dimension_limit),
        concurrency=settings.concurrency,
        queue_limit=settings.effective_queue_limit,
        codecs=codecs,
    )
    state = State(settings=settings, engine=engine, logger=logger)
    if settings.enable_fetch:
        from imaged.fetch.client import Fetcher

        state.fetcher = Fetcher.from_settings(settings)
    if settings.enable_pipeline:
        from imaged.pipeline.executor import PipelineRunner

        state.pipeline = PipelineRunner.from_settings(settings, engine, state.fetcher)
    return state


def create_app(state: State) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, start_middleware],
        client_max_size=state.settings.body_limit,
    )
    app[STATE] = state
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_put("/transform", handlers.put_transform)
    app.router.add_put("/metadata", handlers.put_metadata)
    if state.settings.enable_fetch:
        app.router.add_get("/transform", handlers.get_transform)
        app.router.add_get("/metadata", handlers.get_metadata)
    if state.settings.enable_pipeline:
        from imaged.server.pipeline_handler import put_pipeline

        app.router.add_put("/pipeline", put_pipeline)

    async def close(_: web.Application) -> None:
        if state.fetcher is not None:
            await state.fetcher.close()
        if state.pipeline is not None:
            await state.pipeline.close()
        state.engine.close()

    app.on_cleanup.append(close)
    return app
