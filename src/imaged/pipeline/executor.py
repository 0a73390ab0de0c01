"""Runs a validated pipeline: source → optional source metadata → concurrent tasks
(pipeline.md, Execution and Response).

The tasks' transforms go through the engine together (`Engine.transform_many`, with
`bounded=False`: a request already admitted never gets 503 half-way), which decodes the
source once for all of them (engine/multi.py, batch.md "Decode once for many outputs");
each task still has its own outcome, and any exception in a task only fails that task.
Output size caps protect the storage back-end and the process: one output may be at most
`max_task_output` bytes and all outputs of a request together at most `max_total_output`
bytes; a task over a cap fails before its upload. An optional bucket allow-list (the spec's
[IMPROVE]) fails tasks aimed at other buckets before any work is done (they take no part in
the shared decode).

Every failed task logs one `warn` line `pipeline task failed` with its `id` and `err` text
(and the request id, from the log context). An optional `PipelineObserver` (the server's
metrics) hears each task's status and how long each storage write took.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from typing import Any, Protocol

from imaged.engine.core import Engine
from imaged.engine.formats import MIME_TYPES
from imaged.engine.options import TransformResult
from imaged.errors import BadRequest, ImagedError
from imaged.fetch.client import Fetcher
from imaged.log import Logger
from imaged.params.pipeline import PipelineConfig, TaskSpec
from imaged.pipeline import FAILED, SUCCESS
from imaged.pipeline.storage import open_storage
from imaged.pipeline.storage.base import Storage, StorageError
from imaged.settings import Settings
from imaged.timing import elapsed_ms

# `output.contentType` may name any MIME type of formats.md (exact, case-sensitive).
ALLOWED_CONTENT_TYPES = frozenset(MIME_TYPES.values())
MIB = 1024 * 1024
DEFAULT_MAX_TASK_OUTPUT = 128 * MIB
DEFAULT_MAX_TOTAL_OUTPUT = 512 * MIB


class PipelineObserver(Protocol):
    def task_done(self, status: str) -> None:
        """A task ended with `status` (`success` or `failed`)."""

    def stored(self, backend: str, seconds: float) -> None:
        """One `Storage.put` of back-end `backend` ended (either way) after `seconds`."""


class TaskFailure(Exception):
    """A deliberate task failure with its exact `error` text."""


class _OutputBudget:
    """The request-wide output byte budget shared by its concurrent tasks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def reserve(self, size: int) -> None:
        if self.used + size > self.limit:
            raise TaskFailure(
                f"total output size of the request exceeds the limit of {self.limit} bytes"
            )
        self.used += size

    def release(self, size: int) -> None:
        self.used -= size


class PipelineRunner:
    def __init__(
        self,
        engine: Engine,
        fetcher: Fetcher | None,
        storage: Storage,
        logger: Logger,
        *,
        max_task_output: int = DEFAULT_MAX_TASK_OUTPUT,
        max_total_output: int = DEFAULT_MAX_TOTAL_OUTPUT,
        allowed_buckets: frozenset[str] | None = None,
        observer: PipelineObserver | None = None,
    ) -> None:
        """`logger` is the server's: task failures are logged with its format, level and
        stream."""
        self.observer = observer
        self.engine = engine
        self.fetcher = fetcher
        self.storage = storage
        self.logger = logger
        self.max_task_output = max_task_output
        self.max_total_output = max_total_output
        self.allowed_buckets = allowed_buckets  # None: any bucket the storage accepts

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        engine: Engine,
        fetcher: Fetcher | None,
        logger: Logger,
        observer: PipelineObserver | None = None,
    ) -> PipelineRunner:
        """The local-directory back-end with `--output-dir`, else S3 from the environment."""
        storage = open_storage(settings.output_dir, os.environ)
        return cls(
            engine,
            fetcher,
            storage,
            logger,
            max_task_output=settings.max_pipeline_output,
            max_total_output=settings.max_pipeline_total_output,
            allowed_buckets=settings.allowed_buckets,
            observer=observer,
        )

    async def close(self) -> None:
        await self.storage.close()

    async def run(
        self, config: PipelineConfig, upload: bytes | None, started: float
    ) -> dict[str, Any]:
        """The response object. Source and source-metadata errors fail the request."""
        source = await self._source(config, upload)
        source_metadata = None
        if config.metadata is not None:
            source_metadata = await self.engine.metadata(source, config.metadata, bounded=False)
        budget = _OutputBudget(self.max_total_output)
        started_tasks = time.monotonic()
        allowed = [index for index, task in enumerate(config.tasks) if self._allowed(task)]
        outcomes: list[TransformResult | Exception | None] = [None] * len(config.tasks)
        transformed = await self.engine.transform_many(
            source, [config.tasks[index].transform for index in allowed], bounded=False
        )
        for index, outcome in zip(allowed, transformed, strict=True):
            outcomes[index] = outcome
        results = await asyncio.gather(
            *(
                self._run_task(task, outcome, budget, started_tasks)
                for task, outcome in zip(config.tasks, outcomes, strict=True)
            )
        )
        response: dict[str, Any] = {"totalDurationMs": elapsed_ms(started)}
        if source_metadata is not None:
            response["metadata"] = source_metadata.fields
        response["tasks"] = list(results)
        return response

    async def _source(self, config: PipelineConfig, upload: bytes | None) -> bytes:
        if upload is not None:
            return upload
        if config.url is None:
            raise BadRequest("No image provided")
        if self.fetcher is None:
            raise BadRequest("URL fetching is disabled")
        return (await self.fetcher.fetch(config.url)).body

    def _allowed(self, task: TaskSpec) -> bool:
        return self.allowed_buckets is None or task.output.bucket in self.allowed_buckets

    async def _run_task(
        self,
        task: TaskSpec,
        outcome: TransformResult | Exception | None,
        budget: _OutputBudget,
        started: float,
    ) -> dict[str, Any]:
        """One task's response object from its transform's `outcome` (None: not run, its
        bucket is not allowed); `started` is when the tasks' shared work began."""
        try:
            output, metadata = await self._execute(task, outcome, budget)
        except Exception as exc:
            if self.observer is not None:
                self.observer.task_done(FAILED)
            return {
                "id": task.id,
                "status": FAILED,
                "durationMs": elapsed_ms(started),
                "error": self._failed(task, exc),
            }
        if self.observer is not None:
            self.observer.task_done(SUCCESS)
        result: dict[str, Any] = {
            "id": task.id,
            "status": SUCCESS,
            "durationMs": elapsed_ms(started),
            "output": output,
        }
        if metadata is not None:
            result["metadata"] = metadata
        return result

    async def _execute(
        self, task: TaskSpec, outcome: TransformResult | Exception | None, budget: _OutputBudget
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if outcome is None:
            raise TaskFailure(f"task '{task.id}': bucket '{task.output.bucket}' is not allowed")
        if isinstance(outcome, Exception):
            raise outcome
        result = outcome
        content_type = task.output.content_type
        if content_type is None:
            content_type = MIME_TYPES[result.format]
        elif content_type not in ALLOWED_CONTENT_TYPES:
            raise TaskFailure(f"task '{task.id}': content type '{content_type}' is not allowed")
        size = len(result.data)
        if size > self.max_task_output:
            raise TaskFailure(
                f"output size {size} bytes exceeds the per-task limit of "
                f"{self.max_task_output} bytes"
            )
        budget.reserve(size)
        put_started = time.monotonic()
        try:
            url = await self.storage.put(
                task.output.bucket, task.output.key, result.data, content_type, task.output.acl
            )
        except BaseException:
            budget.release(size)
            raise
        finally:
            if self.observer is not None:
                self.observer.stored(self.storage.backend, time.monotonic() - put_started)
        output: dict[str, Any] = {
            "format": result.format,
            "width": result.width,
            "height": result.height,
        }
        if result.frames > 1:
            output["frames"] = result.frames
        output.update(size=size, url=url)
        metadata = None
        if task.metadata is not None:
            # [QUIRK] the object is already stored; a failure here still fails the task.
            found = await self.engine.metadata(result.data, task.metadata, bounded=False)
            metadata = found.fields
        return output, metadata

    def _failed(self, task: TaskSpec, exc: Exception) -> str:
        """The task's `error` text, logged once."""
        text = exc.message if isinstance(exc, ImagedError) else str(exc) or "Unknown error"
        if isinstance(exc, ImagedError | TaskFailure | StorageError):
            self.logger.warn("pipeline task failed", id=task.id, err=text)
        else:
            # Not a deliberate failure: the same line, plus the trace for the operator.
            stack = "".join(traceback.format_exception(exc))
            self.logger.warn("pipeline task failed", id=task.id, err=text, stack=stack)
        return text
