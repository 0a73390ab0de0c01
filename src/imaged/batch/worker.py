"""One batch worker: reads a source object, runs its tasks through the server's
`PipelineRunner` (the engine code and task semantics of `/pipeline`), writes the outputs to
the storage back-end itself, and returns the source's manifest record.

A worker lives in its own process (a local pool process or a Ray worker): it owns an event
loop, one engine with one permit and libvips at one thread (`VIPS_CONCURRENCY=1`: the
parallelism is one process per CPU), and the storage connections, reused for every source.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imaged.batch.config import BatchConfig, expand
from imaged.batch.sources import Source, SourceReader
from imaged.errors import ImagedError
from imaged.log import Logger
from imaged.pipeline import FAILED, SUCCESS
from imaged.pipeline.storage import open_storage
from imaged.pipeline.storage.base import StorageError
from imaged.settings import Settings
from imaged.timing import elapsed_ms


@dataclass(frozen=True)
class BatchLimits:
    """The server's pipeline settings that apply to a batch (same names and defaults)."""

    body_limit: int
    pixel_limit: int
    input_side_limit: int
    max_frames: int
    max_pipeline_output: int
    max_pipeline_total_output: int
    allowed_buckets: frozenset[str] | None
    operation_timeout: int

    @classmethod
    def from_settings(cls, settings: Settings) -> BatchLimits:
        return cls(
            body_limit=settings.body_limit,
            pixel_limit=settings.pixel_limit,
            input_side_limit=settings.input_side_limit,
            max_frames=settings.max_frames,
            max_pipeline_output=settings.max_pipeline_output,
            max_pipeline_total_output=settings.max_pipeline_total_output,
            allowed_buckets=settings.allowed_buckets,
            operation_timeout=settings.operation_timeout,
        )


@dataclass(frozen=True)
class BatchJob:
    """Everything a worker needs, picklable: sent once to each worker process."""

    config: BatchConfig
    source: Source
    output_dir: str | None  # the local-directory back-end, else S3 from `environ`
    environ: Mapping[str, str]  # the AWS_* variables
    limits: BatchLimits


class Worker:
    def __init__(self, job: BatchJob) -> None:
        os.environ["VIPS_CONCURRENCY"] = "1"
        from imaged.engine.core import Engine
        from imaged.engine.options import Limits
        from imaged.pipeline.executor import PipelineRunner

        self.job = job
        self.loop = asyncio.new_event_loop()
        limits = job.limits
        engine = Engine(
            Limits(limits.pixel_limit, limits.input_side_limit, limits.max_frames),
            concurrency=1,
            queue_limit=1024,
            operation_timeout=limits.operation_timeout,
        )
        # Task failures are in the manifest; the log would only repeat them.
        logger = Logger("text", "error")
        self.runner = PipelineRunner(
            engine,
            None,
            open_storage(job.output_dir, job.environ),
            logger,
            max_task_output=limits.max_pipeline_output,
            max_total_output=limits.max_pipeline_total_output,
            allowed_buckets=limits.allowed_buckets,
        )
        self.reader: SourceReader = job.source.reader()

    def process(self, key: str) -> dict[str, Any]:
        return self.loop.run_until_complete(self._process(key))

    def close(self) -> None:
        async def close() -> None:
            await self.runner.close()
            await self.reader.close()

        self.loop.run_until_complete(close())
        self.runner.engine.close()
        self.loop.close()

    async def _process(self, key: str) -> dict[str, Any]:
        started = time.monotonic()
        record: dict[str, Any] = {"source": key, "status": FAILED, "durationMs": 0}
        try:
            data = await self.reader.read(key, self.job.limits.body_limit)
            planned = expand(self.job.config, key)
            response = await self.runner.run(planned.config, data, started)
        except (ImagedError, StorageError) as exc:
            record["durationMs"] = elapsed_ms(started)
            record["error"] = exc.message if isinstance(exc, ImagedError) else str(exc)
            return record
        by_id = {task["id"]: task for task in response["tasks"]}
        tasks = []
        for task_id in planned.order:
            if task_id in planned.failed:
                tasks.append({"id": task_id, "status": FAILED, "error": planned.failed[task_id]})
            else:
                task = dict(by_id[task_id])
                task.pop("durationMs", None)
                tasks.append(task)
        ok = all(task["status"] == SUCCESS for task in tasks)
        record["status"] = SUCCESS if ok else FAILED
        record["durationMs"] = elapsed_ms(started)
        if "metadata" in response:
            record["metadata"] = response["metadata"]
        record["tasks"] = tasks
        return record


# --- the per-process worker of the local pool and of Ray ----------------------------------

_WORKER: Worker | None = None
_WORKER_JOB: BatchJob | None = None


def worker_for(job: BatchJob) -> Worker:
    """This process's worker for `job` (created on first use, replaced for another job)."""
    global _WORKER, _WORKER_JOB
    if _WORKER is None or job != _WORKER_JOB:
        if _WORKER is not None:
            _WORKER.close()
        _WORKER, _WORKER_JOB = Worker(job), job
    return _WORKER


def init_process(job: BatchJob) -> None:
    """The local pool's initializer: SIGINT/SIGTERM reach the driver, which lets
    in-flight sources finish; and the worker dies with the driver (a `kill -9`)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    worker_for(job)


def process_key(key: str) -> dict[str, Any]:
    """A local pool task: the job came with `init_process`."""
    if _WORKER is None:
        raise RuntimeError("batch worker process not initialised")
    return _WORKER.process(key)


def process_source(job: BatchJob, key: str) -> dict[str, Any]:
    """A Ray task: the job comes with each call (from the object store)."""
    return worker_for(job).process(key)


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, 9)  # SIGKILL when the parent exits
    except (OSError, AttributeError):  # not Linux: the pool notices a dead driver itself
        return
