"""What every handler needs, built once at startup and stored on the application."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from imaged.engine.core import Engine
from imaged.log import Logger
from imaged.server.metrics import DISABLED, Recorder
from imaged.settings import Settings

if TYPE_CHECKING:
    from imaged.fetch.client import Fetcher
    from imaged.pipeline.executor import PipelineRunner


@dataclass
class State:
    settings: Settings
    engine: Engine
    logger: Logger
    fetcher: Fetcher | None = None
    pipeline: PipelineRunner | None = None
    metrics: Recorder = DISABLED  # the real registry with --metrics-listen (server/metrics.py)
    ready: bool = True  # False from the stop signal on: /readyz answers 503


STATE = web.AppKey("state", State)
STARTED = web.RequestKey("started", float)  # time.monotonic() when the request arrived
# Set by a handler that refused a request without reading its body: the connection closes
# right after the response instead of draining the body (server/connection.py).
CLOSE_UNREAD = web.RequestKey("close_unread", bool)
REQUEST_ID = web.RequestKey("request_id", str)  # see server/requestid.py


def get_state(request: web.Request) -> State:
    return request.app[STATE]
