"""`Engine`: the async face of the image engine.

Detection happens on the event loop (cheap, before a permit); the blocking libvips work
runs in a worker thread while holding one permit of the global limiter.

Operations on SVG input also take `_SERIAL_LOCK`, so at most one runs at a time: concurrent
SVG decodes (librsvg/cairo under libvips' svgload) corrupt the heap — a segfault or "double
free or corruption" within minutes of concurrent mutated-SVG requests, reproduced here.
Other formats keep their full concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from imaged.engine import formats, vips
from imaged.engine.deadline import OperationGuard
from imaged.engine.limiter import Limiter
from imaged.engine.options import (
    Limits,
    MetadataOptions,
    MetadataResult,
    TransformOptions,
    TransformResult,
)
from imaged.errors import ImageError

T = TypeVar("T")
Opts = TypeVar("Opts", TransformOptions, MetadataOptions)
# Decoders that are not safe to run in two threads at once, and the lock they share.
SERIAL_FORMATS = frozenset({"svg"})
_SERIAL_LOCK = threading.Lock()


class Engine:
    def __init__(
        self,
        limits: Limits,
        concurrency: int,
        queue_limit: int,
        codecs: formats.Codecs | None = None,
        operation_timeout: float = 60.0,
    ) -> None:
        vips.configure()
        self.limits = limits
        self.operation_timeout = operation_timeout
        self.codecs = codecs or formats.discover()
        self.limiter = Limiter(concurrency, queue_limit)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="vips")

    async def run(
        self, fn: Callable[..., T], *args: object, bounded: bool = True, serial: bool = False
    ) -> T:
        """Run blocking `fn(*args)` in a worker thread under one permit, within the
        operation time limit (libvips is killed when it is exceeded); `serial` operations
        also run one at a time (see `_SERIAL_LOCK`)."""
        guard = OperationGuard()

        def work() -> T:
            with guard.active(), _SERIAL_LOCK if serial else contextlib.nullcontext():
                return fn(*args)

        async with self.limiter.permit(bounded):
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._pool, work)
            try:
                return await asyncio.wait_for(asyncio.shield(future), self.operation_timeout)
            except TimeoutError:
                guard.kill()
                # Keep the permit until the worker thread has really stopped.
                await asyncio.gather(future, return_exceptions=True)
                raise ImageError(
                    f"processing time limit of {self.operation_timeout:g} s exceeded"
                ) from None
            except asyncio.CancelledError:
                guard.kill()
                await asyncio.gather(future, return_exceptions=True)
                raise

    async def transform(
        self, data: bytes, options: TransformOptions, *, bounded: bool = True
    ) -> TransformResult:
        from imaged.engine import transform

        input_format = self.codecs.check_decoder(data)
        self.codecs.check_encoder(options.format)
        return await self._on_input(transform.transform, data, input_format, options, bounded)

    async def metadata(
        self, data: bytes, options: MetadataOptions, *, bounded: bool = True
    ) -> MetadataResult:
        from imaged.engine import metadata

        input_format = self.codecs.check_decoder(data)
        return await self._on_input(metadata.extract, data, input_format, options, bounded)

    async def _on_input(
        self,
        fn: Callable[[bytes, str, Opts, Limits], T],
        data: bytes,
        input_format: str,
        options: Opts,
        bounded: bool,
    ) -> T:
        """`fn(data, input_format, options, limits)` under `run`, serial for SERIAL_FORMATS."""
        return await self.run(
            fn,
            data,
            input_format,
            options,
            self.limits,
            bounded=bounded,
            serial=input_format in SERIAL_FORMATS,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
