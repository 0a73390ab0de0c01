"""The driver of one batch run: list → filter → skip what is done → dispatch to the pool
→ one manifest line per finished source → summary (batch.md, Execution).

SIGINT/SIGTERM stop the dispatch; sources in flight get up to `DRAIN_TIMEOUT` seconds to
finish and be recorded, then the run ends with 130/143 (what was not recorded is simply
processed again by `--resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TextIO

from imaged.batch.config import BatchConfig, output_key
from imaged.batch.manifest import Manifest
from imaged.batch.pools import Pool
from imaged.batch.progress import Progress, Totals
from imaged.batch.sources import Source
from imaged.pipeline import FAILED
from imaged.pipeline.storage.base import StorageError
from imaged.timing import elapsed_ms

DRAIN_TIMEOUT = 30.0
SIGNAL_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
WORKER_DIED = "worker process died while processing this source"
RESTARTING = "a worker process died: restarting the workers, its sources run again"
MAX_ATTEMPTS = 2  # a source whose worker died is tried once more (it may not be its fault)


@dataclass(frozen=True)
class RunOptions:
    includes: tuple[str, ...]
    resume_done: frozenset[str]  # sources to skip (--resume)
    limit: int | None
    dry_run: bool


class ListingError(Exception):
    pass


def included(key: str, globs: Sequence[str]) -> bool:
    lowered = key.lower()
    return any(fnmatch.fnmatchcase(lowered, glob.lower()) for glob in globs)


class Driver:
    def __init__(
        self,
        source: Source,
        config: BatchConfig,
        options: RunOptions,
        progress: Progress,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.source = source
        self.config = config
        self.options = options
        self.progress = progress
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.totals = Totals()
        self.stop_status: int | None = None
        self._stop = asyncio.Event()
        self._in_flight: dict[asyncio.Future[dict[str, Any]], tuple[str, int, float]] = {}

    def _handle_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in SIGNAL_STATUS:
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: signal.Signals) -> None:
        if self.stop_status is None:
            self.stop_status = SIGNAL_STATUS[signum]
            print(
                f"{signum.name}: finishing the sources in flight (up to "
                f"{DRAIN_TIMEOUT:g} s), starting no more",
                file=self.err,
                flush=True,
            )
        self._stop.set()

    async def list_sources(self) -> tuple[list[str], int]:
        """The keys to process, and how many were skipped as already done."""
        keys: list[str] = []
        skipped = seen = 0
        try:
            async for key in self.source.keys():
                if self._stop.is_set():
                    break
                if not included(key, self.options.includes):
                    continue
                seen += 1
                self.progress.listed(seen)
                if key in self.options.resume_done:
                    skipped += 1
                    continue
                keys.append(key)
                if self.options.limit is not None and len(keys) >= self.options.limit:
                    break
        except StorageError as exc:
            raise ListingError(f"cannot list {self.source.label}: {exc}") from exc
        return keys, skipped

    def dry_run(self, keys: list[str]) -> None:
        outputs = 0
        for key in keys:
            for i, task in enumerate(self.config.pipeline.tasks):
                target = f"{task.output.bucket}/{output_key(self.config, i, key)}"
                print(f"{key}\t{task.id}\t{target}", file=self.out)
                outputs += 1
        print(f"dry run: {len(keys)} sources, {outputs} outputs", file=self.out)

    async def run(self, make_pool: Callable[[], Pool], manifest: Manifest | None) -> int:
        loop = asyncio.get_running_loop()
        self._handle_signals(loop)
        try:
            return await self._run(make_pool, manifest)
        finally:
            for signum in SIGNAL_STATUS:
                loop.remove_signal_handler(signum)
            self.progress.close()
            print(self.totals.summary(), file=self.out, flush=True)

    async def _run(self, make_pool: Callable[[], Pool], manifest: Manifest | None) -> int:
        try:
            keys, skipped = await self.list_sources()
        except ListingError as exc:
            print(f"imaged batch: {exc}", file=self.err)
            return 2
        if skipped:
            print(f"skipping {skipped} sources already done (--resume)", file=self.err)
        if self.options.dry_run:
            self.dry_run(keys)
            return self.stop_status or 0
        if keys and self.stop_status is None:
            assert manifest is not None
            pool = make_pool()  # on the main thread: ray.init wants it
            self._handle_signals(asyncio.get_running_loop())  # ray.init sets its own
            self.progress.start(len(keys))
            self.totals.started = time.monotonic()  # the summary's time: processing
            try:
                await self._dispatch(keys, pool, manifest)
            finally:
                drained = self.stop_status is None or not self._in_flight
                await asyncio.to_thread(pool.close, drained)
        else:
            self.progress.start(len(keys))
        if self.stop_status is not None:
            return self.stop_status
        return 0 if self.totals.failed == 0 else 1

    async def _dispatch(self, keys: list[str], pool: Pool, manifest: Manifest) -> None:
        pending = [(key, 1) for key in reversed(keys)]  # popped from the end, in order
        stop = asyncio.ensure_future(self._stop.wait())
        deadline: float | None = None
        try:
            while self._in_flight or (pending and not self._stop.is_set()):
                while pending and not self._stop.is_set() and len(self._in_flight) < pool.capacity:
                    key, attempt = pending.pop()
                    self._in_flight[pool.submit(key)] = (key, attempt, time.monotonic())
                if self._stop.is_set() and deadline is None:
                    deadline = time.monotonic() + DRAIN_TIMEOUT
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                waiting: set[asyncio.Future[Any]] = set(self._in_flight)
                if not stop.done():
                    waiting.add(stop)
                done, _ = await asyncio.wait(
                    waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # the drain deadline passed
                    return
                broken = False
                for future in done:
                    if future is stop:
                        continue
                    key, attempt, started = self._in_flight.pop(future)
                    try:
                        record = future.result()
                    except BrokenProcessPool:
                        broken = True
                        if attempt < MAX_ATTEMPTS:
                            pending.append((key, attempt + 1))
                            continue
                        record = _failed(key, WORKER_DIED, started)
                    except Exception as exc:
                        record = _failed(key, str(exc) or type(exc).__name__, started)
                    manifest.write(record)
                    self.totals.add(record)
                    self.progress.update(self.totals)
                if broken:
                    # Every source in flight failed with the pool: run them again.
                    for future, (key, attempt, _) in list(self._in_flight.items()):
                        future.cancel()
                        pending.append((key, attempt))
                    self._in_flight.clear()
                    print(RESTARTING, file=self.err, flush=True)
                    await asyncio.to_thread(pool.restart)
        finally:
            stop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stop


def _failed(key: str, error: str, started: float) -> dict[str, Any]:
    return {"source": key, "status": FAILED, "durationMs": elapsed_ms(started), "error": error}
