"""`Engine`: the async face of the image engine.

Detection happens on the event loop (cheap, before a permit); the blocking libvips work
runs in a worker thread while holding one permit of the global limiter.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from imaged.engine import formats, vips
from imaged.engine.limiter import Limiter
from imaged.engine.options import (
    Limits,
    MetadataOptions,
    MetadataResult,
    TransformOptions,
    TransformResult,
)

T = TypeVar("T")


class Engine:
    def __init__(
        self,
        limits: Limits,
        concurrency: int,
        queue_limit: int,
        codecs: formats.Codecs | None = None,
    ) -> None:
        vips.configure()
        self.limits = limits
        self.codecs = codecs or formats.discover()
        self.limiter = Limiter(concurrency, queue_limit)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="vips")

    async def run(self, fn: Callable[..., T], *args: object, bounded: bool = True) -> T:
        """Run blocking `fn(*args)` in a worker thread under one permit."""
        async with self.limiter.permit(bounded):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    async def transform(
        self, data: bytes, options: TransformOptions, *, bounded: bool = True
    ) -> TransformResult:
        from imaged.engine import transform

        input_format = self.codecs.check_decoder(data)
        self.codecs.check_encoder(options.format)
        return await self.run(
            transform.transform, data, input_format, options, self.limits, bounded=bounded
        )

    async def metadata(
        self, data: bytes, options: MetadataOptions, *, bounded: bool = True
    ) -> MetadataResult:
        from imaged.engine import metadata

        input_format = self.codecs.check_decoder(data)
        return await self.run(
            metadata.extract, data, input_format, options, self.limits, bounded=bounded
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
