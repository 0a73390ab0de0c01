"""A batch config: the `/pipeline` validation (same module, same messages) plus the batch
rules (batch.md): no `url`, and every `output.key` a valid template.

`expand` turns the validated config into the tasks of one source: each key template
expanded and checked like a key of the local-directory back-end. A key that fails the
check fails only its task (the other tasks of that source still run).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from imaged.batch.templates import KeyTemplate, TemplateError, parse_template
from imaged.errors import BadRequest
from imaged.params.pipeline import PipelineConfig, TaskSpec, parse_json, parse_pipeline_config
from imaged.pipeline.storage.base import StorageError
from imaged.pipeline.storage.local import path_segments

URL_NOT_ALLOWED = "url: not allowed in a batch config"
INVALID_JSON = "invalid JSON in the config"


class BatchConfigError(Exception):
    """A config error: exit status 2 with this message."""


@dataclass(frozen=True)
class BatchConfig:
    pipeline: PipelineConfig  # output keys still hold the template text
    templates: tuple[KeyTemplate, ...]  # one per task, in order


@dataclass(frozen=True)
class SourceTasks:
    """The tasks of one source: `config` holds the tasks with valid expanded keys; `failed`
    maps the id of each task whose key failed the key checks to that error text."""

    config: PipelineConfig
    order: tuple[str, ...]  # every task id, in config order
    failed: dict[str, str]


def load_config(data: bytes, *, max_tasks: int, dimension_limit: int) -> BatchConfig:
    try:
        raw: Any = parse_json(data)
    except ValueError as exc:
        raise BatchConfigError(INVALID_JSON) from exc
    try:
        pipeline = parse_pipeline_config(raw, max_tasks=max_tasks, dimension_limit=dimension_limit)
    except BadRequest as exc:
        raise BatchConfigError(exc.message) from exc
    if "url" in raw:
        raise BatchConfigError(URL_NOT_ALLOWED)
    templates = []
    for i, task in enumerate(pipeline.tasks):
        try:
            templates.append(parse_template(task.output.key))
        except TemplateError as exc:
            raise BatchConfigError(f"task[{i}].output.key: {exc}") from exc
    return BatchConfig(pipeline, tuple(templates))


def output_key(config: BatchConfig, index: int, source_key: str) -> str:
    task = config.pipeline.tasks[index]
    return config.templates[index].expand(source_key, task.id, task.transform.format)


def expand(config: BatchConfig, source_key: str) -> SourceTasks:
    tasks: list[TaskSpec] = []
    failed: dict[str, str] = {}
    for i, task in enumerate(config.pipeline.tasks):
        key = output_key(config, i, source_key)
        try:
            path_segments(task.output.bucket, key)
        except StorageError as exc:
            failed[task.id] = str(exc)
            continue
        tasks.append(dataclasses.replace(task, output=dataclasses.replace(task.output, key=key)))
    return SourceTasks(
        config=dataclasses.replace(config.pipeline, tasks=tuple(tasks)),
        order=tuple(t.id for t in config.pipeline.tasks),
        failed=failed,
    )
