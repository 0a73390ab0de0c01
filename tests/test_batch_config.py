"""A batch config: `/pipeline`'s validation and messages, `url` refused, key templates
checked, and per-source expansion with the local back-end's key checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imaged.batch.config import BatchConfigError, expand, load_config


def _config(*keys: str, **extra: Any) -> bytes:
    tasks = [
        {"id": f"t{i}", "transform": {"format": "png"}, "output": {"bucket": "b", "key": key}}
        for i, key in enumerate(keys)
    ]
    return json.dumps({"tasks": tasks, **extra}).encode()


def _error(data: bytes, max_tasks: int = 10) -> str:
    with pytest.raises(BatchConfigError) as info:
        load_config(data, max_tasks=max_tasks, dimension_limit=16384)
    return str(info.value)


def test_pipeline_messages_are_the_same() -> None:
    assert _error(b"{") == "invalid JSON in the config"
    assert _error(b"[]") == "tasks must be an array"
    assert _error(_config("a", "b"), max_tasks=1) == "too many tasks: 2 (max: 1)"
    bad = json.loads(_config("a"))
    bad["tasks"][0]["transform"]["width"] = -1
    assert _error(json.dumps(bad).encode()) == "task[0].transform.width: must be at least 1"


def test_url_is_not_allowed_even_falsy() -> None:
    assert (
        _error(_config("{name}", url="http://a.example/x")) == "url: not allowed in a batch config"
    )
    assert _error(_config("{name}", url="")) == "url: not allowed in a batch config"


def test_templates_are_checked_in_task_order() -> None:
    assert (
        _error(_config("{name}", "{foo}", "{bar}"))
        == "task[1].output.key: unknown placeholder {foo}"
    )


def test_expand_checks_keys_like_the_local_back_end() -> None:
    config = load_config(
        _config("{path}", "../{name}", "/abs/{name}", "{dir}/x//{name}"),
        max_tasks=10,
        dimension_limit=16384,
    )
    planned = expand(config, "d/a.jpg")
    assert [t.output.key for t in planned.config.tasks] == ["d/a.jpg"]
    assert planned.order == ("t0", "t1", "t2", "t3")
    assert planned.failed == {
        "t1": "invalid key '../a.jpg': '..' path segments are not allowed",
        "t2": "invalid key '/abs/a.jpg': absolute keys are not allowed",
        "t3": "invalid key 'd/x//a.jpg': empty path segments are not allowed",
    }
