"""`Engine`: the async face of the image engine.

Detection happens on the event loop (cheap, before a permit); the blocking libvips work
runs in a worker thread while holding one permit of the global limiter.

Operations on SVG input also take `_SERIAL_LOCK`, so at most one runs at a time: concurrent
SVG decodes (librsvg/cairo under libvips' svgload) corrupt the heap — a segfault or "double
free or corruption" within minutes of concurrent mutated-SVG requests, reproduced here.
Other formats keep their full concurrency.

An `EngineObserver` (the server's metrics) hears of every operation that ends — its kind, its
format, whether it succeeded and how long it held a permit — and of every one refused because
the queue was full; the engine itself knows nothing of metrics. The gauges (permits in use,
queue depth) need no events: they are read from `Engine.limiter` when scraped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

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
from imaged.errors import ImagedError, ImageError, ServerBusy

T = TypeVar("T")
Opts = TypeVar("Opts", TransformOptions, MetadataOptions)
# Decoders that are not safe to run in two threads at once, and the lock they share.
SERIAL_FORMATS = frozenset({"svg"})
_SERIAL_LOCK = threading.Lock()
UNKNOWN_FORMAT = "unknown"


class EngineObserver(Protocol):
    """Told, on the event loop, how each operation ended."""

    def operation_done(self, operation: str, fmt: str, ok: bool, held: float | None) -> None:
        """`operation` is `transform` or `metadata`; `fmt` the output (transform) or input
        (metadata) format, `unknown` if undetected; `held` the seconds a permit was held
        (None if it never got one)."""

    def rejected(self) -> None:
        """An operation was refused at once: the queue was full (503)."""


@dataclass
class _Operation:
    """What `run` reports back about one observed operation."""

    name: str
    format: str
    acquired: float | None = None  # time.monotonic() when it got its permit, if it did


def _held(operation: _Operation) -> float | None:
    """Seconds from the permit to now: called as the operation ends, right after the
    permit's release (nothing awaits in between)."""
    if operation.acquired is None:
        return None
    return time.monotonic() - operation.acquired


class Engine:
    def __init__(
        self,
        limits: Limits,
        concurrency: int,
        queue_limit: int,
        codecs: formats.Codecs | None = None,
        operation_timeout: float = 60.0,
        observer: EngineObserver | None = None,
        memory_budget: int = 0,
    ) -> None:
        vips.configure()
        self.observer = observer
        self.limits = limits
        self.operation_timeout = operation_timeout
        self.codecs = codecs or formats.discover()
        self.limiter = Limiter(concurrency, queue_limit, memory_budget)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="vips")
        # With a budget, the estimates read headers here, before the operation queues.
        self._header_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vips-header")

    async def run(
        self,
        fn: Callable[..., T],
        *args: object,
        bounded: bool = True,
        serial: bool = False,
        observed: _Operation | None = None,
        cost: int = 0,
        held: int = 0,
        timeout: float | None = None,
    ) -> T:
        """Run blocking `fn(*args)` in a worker thread under one permit (and `cost` bytes of
        the memory budget, `held` of them already in memory while it waits), within the
        operation time limit (or `timeout` seconds; libvips is killed when it is exceeded);
        `serial` operations also run one at a time (see `_SERIAL_LOCK`). `observed` notes
        when it got the permit."""
        async with self.limiter.permit(bounded, cost, held):
            if observed is not None:
                observed.acquired = time.monotonic()  # until `_observe` ends: the release
            return await self._in_thread(self._pool, fn, args, serial, timeout)

    async def _in_thread(
        self,
        pool: ThreadPoolExecutor,
        fn: Callable[..., T],
        args: tuple[object, ...],
        serial: bool,
        timeout: float | None = None,
    ) -> T:
        guard = OperationGuard()
        limit = self.operation_timeout if timeout is None else timeout

        def work() -> T:
            with guard.active(), _SERIAL_LOCK if serial else contextlib.nullcontext():
                return fn(*args)

        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(pool, work)
        try:
            return await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            guard.kill()
            # Keep the permit until the worker thread has really stopped.
            await asyncio.gather(future, return_exceptions=True)
            raise self.time_limit_error() from None
        except asyncio.CancelledError:
            guard.kill()
            await asyncio.gather(future, return_exceptions=True)
            raise

    def time_limit_error(self) -> ImageError:
        return ImageError(f"processing time limit of {self.operation_timeout:g} s exceeded")

    @contextlib.contextmanager
    def _observe(self, name: str, fmt: str) -> Iterator[_Operation | None]:
        """Reports the operation to the observer when it ends, however it ends."""
        if self.observer is None:
            yield None
            return
        operation = _Operation(name, fmt)
        try:
            yield operation
        except BaseException as exc:
            held = _held(operation)
            if isinstance(exc, ServerBusy) and held is None:
                self.observer.rejected()  # refused by the full queue: it never ran
            else:
                self.observer.operation_done(name, operation.format, False, held)
            raise
        self.observer.operation_done(name, operation.format, True, _held(operation))

    async def transform(
        self, data: bytes, options: TransformOptions, *, bounded: bool = True
    ) -> TransformResult:
        from imaged.engine import budget, transform

        with self._observe("transform", options.format) as observed:
            input_format = self.codecs.check_decoder(data)
            self.codecs.check_encoder(options.format)
            return await self._on_input(
                transform.transform,
                budget.transform_cost,
                data,
                input_format,
                options,
                bounded,
                observed,
            )

    async def transform_many(
        self, data: bytes, options: Sequence[TransformOptions], *, bounded: bool = True
    ) -> list[TransformResult | Exception]:
        """Every transform of `options` on one source, decoded once for all of them where
        it can be (engine/multi.py): one operation under one permit, whose time limit is
        the operation time limit per task. Each task has its own outcome (a result or the
        exception its `transform` would raise) and is observed as one `transform`
        operation, as if it had run alone; the permit time is shared out among them.
        Raises only what refuses the whole operation (`ServerBusy`, cancellation)."""
        from imaged.engine import multi

        outcomes: list[TransformResult | Exception | None] = [None] * len(options)
        try:
            input_format = self.codecs.check_decoder(data)
        except ImagedError as exc:
            input_format = None
            outcomes = [exc] * len(options)
        runnable = []
        for index, task in enumerate(options if input_format is not None else ()):
            try:
                self.codecs.check_encoder(task.format)
            except ImagedError as exc:
                outcomes[index] = exc
            else:
                runnable.append(index)
        results = multi.Results.empty(len(runnable))
        if input_format is not None and runnable:
            tasks = [options[index] for index in runnable]
            serial = input_format in SERIAL_FORMATS
            cost = 0
            if self.limiter.budget:
                cost = await self._shared_cost(data, input_format, tasks, serial)
                if cost > self.limiter.budget:  # not together: each alone, with its own estimate
                    return list(
                        await asyncio.gather(*(self._outcome(data, o, bounded) for o in options))
                    )
            try:
                await self.run(
                    multi.transform_many,
                    data,
                    input_format,
                    tasks,
                    self.limits,
                    results,
                    bounded=bounded,
                    serial=serial,
                    timeout=self.operation_timeout * len(tasks),
                    cost=cost,
                    held=len(data),
                )
            except ServerBusy:
                if self.observer is not None:
                    self.observer.rejected()
                raise
            except ImageError as exc:  # the time limit: the tasks not done by then fail
                results.outcomes = [exc if o is None else o for o in results.outcomes]
            except asyncio.CancelledError:  # every task ends with the operation, failed
                self._observe_many(options, runnable, results.seconds, [False] * len(options))
                raise
            for position, index in enumerate(runnable):
                outcomes[index] = results.outcomes[position]
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(options)
        ok = [isinstance(outcome, TransformResult) for outcome in done]
        self._observe_many(options, runnable, results.seconds, ok)
        return done

    async def _shared_cost(
        self, data: bytes, input_format: str, tasks: list[TransformOptions], serial: bool
    ) -> int:
        """The memory reservation of one shared-decode operation: its tasks run one after
        another beside the shared decode, which is no larger than the largest task's own
        decode, so twice the largest task's estimate bounds it (and so does the sum)."""
        from imaged.engine import budget

        def costs() -> list[int]:
            return [budget.transform_cost(data, input_format, t, self.limits) for t in tasks]

        each = await self._in_thread(self._header_pool, costs, (), serial)
        return min(sum(each), 2 * max(each))

    async def _outcome(
        self, data: bytes, options: TransformOptions, bounded: bool
    ) -> TransformResult | Exception:
        """One task alone, its failure as its outcome."""
        try:
            return await self.transform(data, options, bounded=bounded)
        except ImagedError as exc:
            if isinstance(exc, ServerBusy):
                raise
            return exc

    def _observe_many(
        self,
        options: Sequence[TransformOptions],
        runnable: list[int],
        seconds: list[float],
        ok: list[bool],
    ) -> None:
        """One `transform` operation per task for the observer; `held` is the worker time
        charged to the task (None for those refused before the operation)."""
        if self.observer is None:
            return
        for index, task in enumerate(options):
            held = seconds[runnable.index(index)] if index in runnable else None
            self.observer.operation_done("transform", task.format, ok[index], held)

    async def metadata(
        self, data: bytes, options: MetadataOptions, *, bounded: bool = True
    ) -> MetadataResult:
        from imaged.engine import budget, metadata

        with self._observe("metadata", UNKNOWN_FORMAT) as observed:
            if observed is not None:  # the input format, even if it cannot be decoded
                observed.format = formats.detect(data) or UNKNOWN_FORMAT
            input_format = self.codecs.check_decoder(data)
            return await self._on_input(
                metadata.extract,
                budget.metadata_cost,
                data,
                input_format,
                options,
                bounded,
                observed,
            )

    async def _on_input(
        self,
        fn: Callable[[bytes, str, Opts, Limits], T],
        estimate: Callable[[bytes, str, Opts, Limits], int],
        data: bytes,
        input_format: str,
        options: Opts,
        bounded: bool,
        observed: _Operation | None,
    ) -> T:
        """`fn(data, input_format, options, limits)` under `run`, serial for SERIAL_FORMATS;
        with a memory budget it reserves what `budget.*_cost` estimates from the header."""
        serial = input_format in SERIAL_FORMATS
        cost = 0
        if self.limiter.budget:
            args = (data, input_format, options, self.limits)
            cost = await self._in_thread(self._header_pool, estimate, args, serial)
        return await self.run(
            fn,
            data,
            input_format,
            options,
            self.limits,
            bounded=bounded,
            serial=serial,
            observed=observed,
            cost=cost,
            held=len(data),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._header_pool.shutdown(wait=False, cancel_futures=True)
