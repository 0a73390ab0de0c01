"""Pipeline configuration JSON → validated task specs (pipeline.md, typed fail-fast mode).

Two passes, exactly as the spec orders them: a structural pass over the whole config
(every task, then the top-level `metadata` type), then the typed option validation of each
task in order (transform options, then its metadata flags), then the top-level metadata
flags. The first problem raises `BadRequest` with the spec's text.

JavaScript semantics matter where the original was a JavaScript program: "object" includes
arrays, the source `url` and the `acl`/`contentType` values count when *truthy* and are
stringified like `String(value)`, and JSON numbers behave as doubles.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, NoReturn

from imaged.engine.options import MetadataOptions, TransformOptions
from imaged.errors import BadRequest
from imaged.jsonfmt import js_number, replace_surrogates
from imaged.params.kinds import METADATA_ROUTE, Context, read_json
from imaged.params.table import (
    AFTER_FORMAT,
    FORMAT_PARAM,
    METADATA_CONTEXT,
    options_of,
)


@dataclass(frozen=True)
class OutputSpec:
    """Where a task's output goes. `acl` and `content_type` are the stringified values when
    truthy in the config, else None; the content type is checked when the task runs."""

    bucket: str
    key: str
    acl: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    id: str
    transform: TransformOptions
    output: OutputSpec
    metadata: MetadataOptions | None = None  # None: no metadata of the output requested


@dataclass(frozen=True)
class PipelineConfig:
    tasks: tuple[TaskSpec, ...]
    metadata: MetadataOptions | None = None  # None: no source metadata requested
    url: str | None = None  # the stringified `url` when truthy


# --- JSON ---------------------------------------------------------------------------------


def _js_int(text: str) -> int | float:
    """JSON integers are doubles in JavaScript: beyond the double range they are ±inf
    (Python's int() would refuse more than 4300 digits and fail the whole parse)."""
    if len(text) > 400:
        return float(text)
    return int(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


def parse_json(data: bytes) -> Any:
    """Strict RFC 8259 JSON from bytes (UTF-8, no BOM, no NaN/Infinity); ValueError if not.

    JavaScript number semantics for huge integers, and a ValueError (not RecursionError)
    for absurdly deep nesting."""
    text = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if text.startswith("\ufeff"):
        raise ValueError("BOM")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_js_int)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


# --- JavaScript value semantics -----------------------------------------------------------


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON value: objects and arrays (even empty) are truthy."""
    if value is None or value is False:
        return False
    if value is True or isinstance(value, dict | list):
        return True
    if isinstance(value, int | float):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    return isinstance(value, str) and value != ""


def js_string(value: Any) -> str:
    """`String(value)` for a JSON value (numbers as JavaScript prints doubles)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return "Infinity" if value > 0 else "-Infinity"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return js_number(number)
    if isinstance(value, list):
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"


def _fail(message: str) -> NoReturn:
    raise BadRequest(replace_surrogates(message))


# --- structural pass ----------------------------------------------------------------------


def _is_object(value: Any) -> bool:
    """In the structural checks an "object" is a JSON object or array."""
    return isinstance(value, dict | list)


def _member(container: Any, key: str) -> Any:
    return container.get(key) if isinstance(container, dict) else None


def _required_string(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _check_structure(config: Any, max_tasks: int) -> list[dict[str, Any]]:
    if not _is_object(config):
        _fail("config must be an object")
    tasks = _member(config, "tasks")
    if not isinstance(tasks, list):
        _fail("tasks must be an array")
    if not tasks:
        _fail("at least one task is required")
    if len(tasks) > max_tasks:
        _fail(f"too many tasks: {len(tasks)} (max: {max_tasks})")
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        prefix = f"task[{i}]: "
        if not _is_object(task):
            _fail(prefix + "must be an object")
        task_id = _member(task, "id")
        if not _required_string(task_id):
            _fail(prefix + "id is required")
        if task_id in seen:
            _fail(prefix + f"duplicate id '{task_id}'")
        seen.add(task_id)
        transform = _member(task, "transform")
        if not _is_object(transform):
            _fail(prefix + "transform is required")
        if not _required_string(_member(transform, "format")):
            _fail(prefix + "transform.format is required")
        output = _member(task, "output")
        if not _is_object(output):
            _fail(prefix + "output is required")
        if not _required_string(_member(output, "bucket")):
            _fail(prefix + "output.bucket is required")
        if not _required_string(_member(output, "key")):
            _fail(prefix + "output.key is required")
        if isinstance(task, dict) and "metadata" in task and not isinstance(task["metadata"], dict):
            _fail(prefix + "metadata must be an object")
    source_metadata = _member(config, "metadata")
    if source_metadata is not None and not isinstance(source_metadata, dict):
        _fail("metadata must be an object")
    return tasks  # every entry is now a dict (arrays failed at `id is required`)


# --- typed option validation --------------------------------------------------------------

_FLAGS = options_of(METADATA_ROUTE)


def _transform_options(spec: dict[str, Any], prefix: str, dimension_limit: int) -> TransformOptions:
    """`format` first (effort's range depends on it), then the rest in table order."""
    fields = read_json(spec, (FORMAT_PARAM,), Context(dimension_limit), prefix)
    ctx = Context(dimension_limit, fields["format"])
    fields.update(read_json(spec, AFTER_FORMAT, ctx, prefix))
    return TransformOptions(**fields)


def _metadata_options(spec: dict[str, Any], prefix: str) -> MetadataOptions:
    return MetadataOptions(**read_json(spec, _FLAGS, METADATA_CONTEXT, prefix))


def _output(spec: dict[str, Any]) -> OutputSpec:
    acl, content_type = spec.get("acl"), spec.get("contentType")
    return OutputSpec(
        bucket=spec["bucket"],
        key=spec["key"],
        acl=js_string(acl) if js_truthy(acl) else None,
        content_type=js_string(content_type) if js_truthy(content_type) else None,
    )


def parse_pipeline_config(config: Any, *, max_tasks: int, dimension_limit: int) -> PipelineConfig:
    """The parsed JSON config → `PipelineConfig`, or `BadRequest` with the first problem."""
    tasks = _check_structure(config, max_tasks)
    specs: list[TaskSpec] = []
    for i, task in enumerate(tasks):
        transform = _transform_options(task["transform"], f"task[{i}].transform.", dimension_limit)
        metadata = None
        if isinstance(task.get("metadata"), dict):
            metadata = _metadata_options(task["metadata"], f"task[{i}].metadata.")
        specs.append(TaskSpec(task["id"], transform, _output(task["output"]), metadata))
    source_metadata = None
    if isinstance(config.get("metadata"), dict):
        source_metadata = _metadata_options(config["metadata"], "metadata.")
    url = config.get("url")
    return PipelineConfig(
        tasks=tuple(specs),
        metadata=source_metadata,
        url=js_string(url) if js_truthy(url) else None,
    )
