"""Listening: host/port or unix socket, TLS/mTLS, startup log, graceful stop (config.md)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import socket
import ssl
import stat

from aiohttp import web

from imaged import __version__
from imaged.engine import vips
from imaged.log import Logger
from imaged.server.app import build_state, create_app
from imaged.settings import Settings

KEEPALIVE_SECONDS = 10.0
SHUTDOWN_SECONDS = 10.0
BACKLOG = 1024


class StartupError(Exception):
    pass


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls or settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    context.set_alpn_protocols(["http/1.1"])
    if settings.mtls_ca:
        context.load_verify_locations(cafile=settings.mtls_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _socket_is_live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def prepare_unix_path(path: str) -> None:
    """Create the parent directory; replace a stale socket; refuse a live one or a file."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise StartupError(f"Refusing to overwrite existing non-socket at UNIX path: {path}")
    if _socket_is_live(path):
        raise StartupError(f"Refusing to replace a UNIX socket that is in use: {path}")
    os.unlink(path)


def remove_unix_socket(path: str | None) -> None:
    if not path:
        return
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)


def _log_startup(
    logger: Logger, settings: Settings, decoders: list[str], encoders: list[str]
) -> None:
    logger.info("imaged", version=__version__)
    logger.info("runtime", version=f"Python {platform.python_version()}")
    logger.info("pyvips", version=vips.pyvips_version())
    logger.info("vips", version=vips.vips_version())
    logger.info("concurrency", value=settings.concurrency)
    logger.info("decoders", value=decoders)
    logger.info("encoders", value=encoders)
    if settings.enable_pipeline:
        logger.info("pipeline enabled", maxTasks=settings.max_pipeline_tasks)


def listen_url(settings: Settings) -> str:
    if settings.unix:
        return settings.unix
    scheme = "https" if settings.tls else "http"
    host = settings.host or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{settings.port}"


async def _serve(settings: Settings, logger: Logger) -> int:
    state = build_state(settings, logger)
    codecs = state.engine.codecs
    _log_startup(logger, settings, list(codecs.decoders), list(codecs.encoders))
    app = create_app(state)
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=KEEPALIVE_SECONDS,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_SECONDS,
    )
    await runner.setup()
    context = tls_context(settings)
    site: web.BaseSite
    if settings.unix:
        prepare_unix_path(settings.unix)
        site = web.UnixSite(runner, settings.unix, ssl_context=context, backlog=BACKLOG)
    else:
        site = web.TCPSite(
            runner,
            settings.host or "localhost",
            settings.port,
            ssl_context=context,
            backlog=BACKLOG,
        )
    await site.start()
    logger.info(
        "server listening",
        tls=context is not None,
        mtls=bool(settings.mtls_ca),
        url=listen_url(settings),
    )

    loop = asyncio.get_running_loop()
    stop: asyncio.Future[int] = loop.create_future()

    def on_signal(sig: int) -> None:
        if not stop.done():
            stop.set_result(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    received = await stop
    logger.info("Shutting down", signal=signal.Signals(received).name)
    try:
        await asyncio.wait_for(runner.cleanup(), SHUTDOWN_SECONDS)
    except TimeoutError:
        logger.warn("Timeout reached, forcing exit")
        return 1
    except Exception as exc:
        logger.error("Error shutting down", err=exc)
        return 1
    return 0


def serve(settings: Settings) -> int:
    logger = Logger(settings.log_format, settings.log_level)
    try:
        return asyncio.run(_serve(settings, logger))
    except StartupError as exc:
        logger.error(str(exc))
        return 1
    except OSError as exc:
        logger.error("Error starting server", err=exc)
        return 1
    finally:
        remove_unix_socket(settings.unix)
