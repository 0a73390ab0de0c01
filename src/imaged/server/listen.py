"""Serving: startup log, our sockets (`server/sockets.py`) served by aiohttp through our own
protocol factory (`server/connection.py`: read deadlines, draining), the separate metrics
listener, signals, readiness and the graceful stop with its forced-exit timer (config.md,
Listening and Shutdown; observability.md, Health and readiness).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import socket
import ssl
import sys
import threading
from dataclasses import dataclass

from aiohttp import web

from imaged import __version__, resources
from imaged.engine import vips
from imaged.log import Logger, bridge_stdlib_logging
from imaged.server.app import build_state, create_app, metrics_app
from imaged.server.connection import ConnectionFactory, Deadlines
from imaged.server.metrics import Metrics
from imaged.server.requestlog import HOOK_LOGGER, finished_hook
from imaged.server.sockets import (
    DEFAULT_HOST,
    StartupError,
    bind_tcp,
    bind_unix,
    remove_unix_socket,
    tls_context,
)
from imaged.server.state import STATE, State
from imaged.settings import ListenAddress, Settings

BACKLOG = 1024  # ≥ 511 (http-api.md); the kernel caps it at net.core.somaxconn
MAX_LINE = 16384  # request line and each header line; longer → 400


def listen_url(settings: Settings) -> str:
    if settings.unix:
        return settings.unix
    scheme = "https" if settings.tls else "http"
    host = settings.host or DEFAULT_HOST
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{settings.port}"


async def _serve_socket(
    sock: socket.socket,
    factory: ConnectionFactory,
    context: ssl.SSLContext | None,
    handshake_timeout: float,
) -> asyncio.Server:
    """Serves one bound socket with our protocol factory. asyncio directly rather than an
    aiohttp site: those use aiohttp's own factory and cannot bound the TLS handshake. The
    application runner still owns the connections (the factory registers them with it)."""
    return await asyncio.get_running_loop().create_server(
        factory,
        sock=sock,
        ssl=context,
        backlog=BACKLOG,
        ssl_handshake_timeout=handshake_timeout if context else None,
    )


# --- lifecycle ---------------------------------------------------------------------------


@dataclass
class Listener:
    """A serving application: stop it with `await stop()`."""

    runner: web.AppRunner
    factory: ConnectionFactory
    url: str
    servers: list[asyncio.Server]
    unix_path: str | None = None

    async def stop(self, timeout: float) -> bool:
        """Stop accepting, close idle connections, let requests in flight finish (their
        responses close the connection), then run the application's cleanup. False if
        requests were still in flight after `timeout` seconds (they are then cancelled)."""
        loop = asyncio.get_running_loop()
        for server in self.servers:
            server.close()
        deadline = loop.time() + timeout
        while self.factory.connections and loop.time() < deadline:
            for connection in self.factory.connections:
                connection.drain()
            await asyncio.sleep(0.02)
        drained = not self.factory.connections
        await self.runner.cleanup()
        remove_unix_socket(self.unix_path)
        return drained


async def start(settings: Settings, logger: Logger, app: web.Application) -> Listener:
    """Bind, then serve `app`; raises StartupError or OSError if that is impossible."""
    context = tls_context(settings)
    sockets = (
        [bind_unix(settings.unix)]
        if settings.unix
        else bind_tcp(settings.host or DEFAULT_HOST, settings.port)
    )
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    servers: list[asyncio.Server] = []
    hook = finished_hook(app[STATE])  # metrics and the access log of finished requests
    hook_options = {} if hook is None else {"access_log_class": hook}
    try:
        await runner.setup()
        assert runner.server is not None
        factory = ConnectionFactory(
            runner.server,
            Deadlines(head=float(settings.header_timeout), body=float(settings.body_timeout)),
            logger,
            keepalive_timeout=float(settings.keepalive_timeout),
            access_log=None if hook is None else HOOK_LOGGER,
            max_line_size=MAX_LINE,
            max_field_size=MAX_LINE,
            **hook_options,
        )
        for sock in sockets:
            servers.append(
                await _serve_socket(sock, factory, context, float(settings.header_timeout))
            )
    except BaseException:
        for server in servers:
            server.close()
        for sock in sockets:
            sock.close()
        with contextlib.suppress(Exception):
            await runner.cleanup()
        if settings.unix:
            remove_unix_socket(settings.unix)  # the one we just bound
        raise
    return Listener(runner, factory, listen_url(settings), servers, settings.unix)


async def start_metrics(address: ListenAddress, metrics: Metrics) -> web.AppRunner:
    """Serve `/metrics` on its own address. A port in use (any bind error) is the startup
    failure of the main port: `Error starting server` with this listener's URL."""
    try:
        sockets = bind_tcp(address.host, address.port)
    except OSError as exc:
        raise StartupError("Error starting server", url=address.url, err=exc) from exc
    runner = web.AppRunner(
        metrics_app(metrics), access_log=None, handle_signals=False, shutdown_timeout=0.5
    )
    try:
        await runner.setup()
        for sock in sockets:
            await web.SockSite(runner, sock).start()
    except BaseException:
        for sock in sockets:
            sock.close()
        await runner.cleanup()
        raise
    return runner


def log_startup(
    logger: Logger, settings: Settings, decoders: list[str], encoders: list[str]
) -> None:
    logger.info("imaged", version=__version__)
    logger.info("runtime", version=f"Python {platform.python_version()}")
    logger.info("pyvips", version=vips.pyvips_version())
    logger.info("vips", version=vips.vips_version())
    logger.debug("libvips", **vips.introspect())
    cpus = settings.sources.get("concurrency") or resources.usable_cpus().source
    logger.info("concurrency", value=settings.concurrency, source=cpus)
    budget = settings.sources.get("memory_budget") or (
        "cgroup" if settings.memory_budget else "none"
    )
    logger.info("memory budget", value=settings.memory_budget, source=budget)
    logger.info("decoders", value=decoders)
    logger.info("encoders", value=encoders)
    if settings.enable_pipeline:
        logger.info("pipeline enabled", maxTasks=settings.max_pipeline_tasks)
    if settings.enable_fetch and settings.result_cache_size:
        logger.info("result cache", size=settings.result_cache_size, ttl=settings.result_cache_ttl)
    # Access control: how many secrets, never which (`signing keys=2`, `api tokens=1`).
    if settings.signing_keys:
        logger.info("signing", keys=len(settings.signing_keys))
    if settings.api_tokens:
        logger.info("api", tokens=len(settings.api_tokens))


_exiting = threading.Lock()


def _force_exit(logger: Logger, unix_path: str | None) -> None:
    """Called by the shutdown timer thread, or by the loop when requests did not finish."""
    if not _exiting.acquire(blocking=False):
        threading.Event().wait()  # the other caller is ending the process
    logger.warn("Timeout reached, forcing exit")
    remove_unix_socket(unix_path)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os._exit(1)


@dataclass
class _Process:
    unix_path: str | None = None  # set once we own a socket file


async def _delay_stop(state: State, signals: asyncio.Queue[int]) -> None:
    """After SIGTERM, keep serving for `--shutdown-delay` seconds (with /readyz already
    503) so load balancers notice; a SIGINT ends the wait at once."""
    try:
        async with asyncio.timeout(state.settings.shutdown_delay):
            while await signals.get() != signal.SIGINT:
                pass
    except TimeoutError:
        pass


async def _main(settings: Settings, logger: Logger, process: _Process) -> int:
    loop = asyncio.get_running_loop()
    signals: asyncio.Queue[int] = asyncio.Queue()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signals.put_nowait, sig)

    state = build_state(settings, logger)
    log_startup(
        logger, settings, list(state.engine.codecs.decoders), list(state.engine.codecs.encoders)
    )
    listener = await start(settings, logger, create_app(state))
    process.unix_path = listener.unix_path
    metrics_runner = None
    address = settings.metrics_address
    if address is not None and isinstance(state.metrics, Metrics):
        try:
            metrics_runner = await start_metrics(address, state.metrics)
        except BaseException:
            await listener.stop(0)
            raise
        logger.info("metrics listening", url=address.url)
    logger.info("server listening", tls=settings.tls, mtls=bool(settings.mtls_ca), url=listener.url)

    signum = await signals.get()
    logger.info("Shutting down", signal=signal.Signals(signum).name)
    state.ready = False
    if signum == signal.SIGTERM and settings.shutdown_delay > 0:
        await _delay_stop(state, signals)
    timer = threading.Timer(settings.shutdown_timeout, _force_exit, (logger, process.unix_path))
    timer.daemon = True  # still armed while the interpreter exits: a hang there is bounded too
    timer.start()
    try:
        drained = await listener.stop(settings.shutdown_timeout)
        if metrics_runner is not None:
            await metrics_runner.cleanup()
    except Exception as exc:
        logger.error("Error shutting down", err=exc)
        return 1
    if not drained:
        _force_exit(logger, process.unix_path)
    return 0


def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; the process exit status."""
    logger = Logger(settings.log_format, settings.log_level)
    bridge_stdlib_logging(logger)
    process = _Process()
    try:
        return asyncio.run(_main(settings, logger, process))
    except StartupError as exc:
        logger.log("fatal", exc.message, **exc.fields)
        return 1
    except OSError as exc:
        logger.log("fatal", "Error starting server", url=listen_url(settings), err=exc)
        return 1
    finally:
        remove_unix_socket(process.unix_path)
