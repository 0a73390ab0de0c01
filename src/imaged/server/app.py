"""The aiohttp application: state, middlewares and the route table (http-api.md, Routes)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from imaged.engine.core import Engine
from imaged.engine.formats import Codecs
from imaged.engine.options import Limits
from imaged.log import Logger
from imaged.server import handlers, openapi, playground
from imaged.server.access import access_middleware, refused
from imaged.server.body import check_content_type, check_declared_length
from imaged.server.caching import CACHING, Caching, no_store_middleware
from imaged.server.errors import error_middleware, status_text, text_response
from imaged.server.metrics import CONTENT_TYPE, METRICS_PATH, Metrics
from imaged.server.requestid import on_response_prepare
from imaged.server.requestlog import request_log_middleware
from imaged.server.state import STATE, State
from imaged.settings import Settings


@web.middleware
async def upload_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Before a route that takes a body runs, refuses a declared body over the limit (413,
    nothing read) and a malformed Content-Type. Other requests get their own answer (404,
    /healthz) whatever body they declare; aiohttp discards it."""
    if request.method == "PUT" and request.match_info.http_exception is None:
        check_declared_length(request, request.app[STATE].settings.body_limit)
        check_content_type(request)
    return await handler(request)


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue`: no `100 Continue` for a body over the limit (the middleware
    then answers 413 at once), nor for a request access control refuses (401 at once)."""
    if refused(request):
        return None
    limit = request.app[STATE].settings.body_limit
    if request.content_length is not None and request.content_length > limit:
        return None
    if request.headers.get("Expect", "").lower() != "100-continue":
        response = text_response(417, status_text(417))
        response.force_close()
        return response
    if request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the response proper has not started
    return None


def build_state(settings: Settings, logger: Logger, codecs: Codecs | None = None) -> State:
    engine = Engine(
        Limits(
            pixel_limit=settings.pixel_limit,
            side_limit=settings.input_side_limit,
            max_frames=settings.max_frames,
        ),
        concurrency=settings.concurrency,
        queue_limit=settings.effective_queue_limit,
        codecs=codecs,
        operation_timeout=settings.operation_timeout,
    )
    state = State(settings=settings, engine=engine, logger=logger)
    # Only a server with a metrics listener records metrics (the seams stay None otherwise).
    metrics = Metrics(engine.limiter) if settings.metrics_listen is not None else None
    if metrics is not None:
        state.metrics = engine.observer = metrics
    if settings.enable_fetch:
        from imaged.fetch.client import Fetcher

        state.fetcher = Fetcher.from_settings(settings, metrics)
    if settings.enable_pipeline:
        from imaged.pipeline.executor import PipelineRunner

        state.pipeline = PipelineRunner.from_settings(
            settings, engine, state.fetcher, logger, metrics
        )
    return state


def create_app(state: State) -> web.Application:
    app = web.Application(
        middlewares=[
            request_log_middleware,
            no_store_middleware,
            error_middleware,
            access_middleware,
            upload_middleware,
        ],
        client_max_size=state.settings.body_limit,
    )
    app[STATE] = state
    app.on_response_prepare.append(on_response_prepare)
    app.router.add_get("/healthz", handlers.healthz)
    openapi.add_route(app)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_put("/transform", handlers.put_transform, expect_handler=expect_continue)
    app.router.add_put("/metadata", handlers.put_metadata, expect_handler=expect_continue)
    if not state.settings.disable_playground:
        playground.add_routes(app)
    if state.fetcher is not None:
        app[CACHING] = Caching(state.settings, state.fetcher, state.metrics)
    if state.settings.enable_fetch:
        app.router.add_get("/transform", handlers.get_transform)
        app.router.add_get("/metadata", handlers.get_metadata)
    if state.settings.enable_pipeline:
        from imaged.server.pipeline_handler import put_pipeline

        app.router.add_put("/pipeline", put_pipeline, expect_handler=expect_continue)

    async def close(_: web.Application) -> None:
        if state.fetcher is not None:
            await state.fetcher.close()
        if state.pipeline is not None:
            await state.pipeline.close()
        state.engine.close()

    app.on_cleanup.append(close)
    return app


def metrics_app(metrics: Metrics) -> web.Application:
    """The metrics listener's application: `GET /metrics` (and HEAD) in the text exposition
    format, `404 Not Found` for every other method and path. No image route, no TLS, no
    tokens: it is meant for an internal address only."""

    async def answer(request: web.Request) -> web.Response:
        if request.path != METRICS_PATH or request.method not in ("GET", "HEAD"):
            return text_response(404, status_text(404))
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app
