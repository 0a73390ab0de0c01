"""The pipeline executor with the real engine: output size caps, concurrency of tasks,
per-task failure isolation and its log lines, the image-source rules, and the observer seam
of the metrics."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imaged.engine.core import Engine
from imaged.engine.options import Limits
from imaged.errors import BadRequest
from imaged.log import Logger
from imaged.params.pipeline import PipelineConfig, parse_pipeline_config
from imaged.pipeline.executor import PipelineRunner
from imaged.pipeline.storage.local import LocalStorage
from tests.pipeline_helpers import sample_image, task

IMAGE = sample_image(96, 64)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    eng = Engine(Limits(), concurrency=2, queue_limit=8)
    yield eng
    eng.close()


def config(*tasks: dict[str, Any], **extra: Any) -> PipelineConfig:
    return parse_pipeline_config(
        {"tasks": list(tasks), **extra}, max_tasks=10, dimension_limit=16384
    )


def runner(
    engine: Engine, storage: Any, logger: Logger | None = None, **caps: int
) -> PipelineRunner:
    return PipelineRunner(engine, None, storage, logger or Logger(stream=io.StringIO()), **caps)


async def sizes(engine: Engine, tmp_path: Path, cfg: PipelineConfig) -> list[int]:
    result = await runner(engine, LocalStorage(str(tmp_path / "probe"))).run(
        cfg, IMAGE, time.monotonic()
    )
    return [t["output"]["size"] for t in result["tasks"]]


async def test_per_task_output_cap(engine: Engine, tmp_path: Path) -> None:
    cfg = config(task("png", "png", "b", "a.png"), task("jpeg", "jpeg", "b", "a.jpg"))
    png_size, jpeg_size = await sizes(engine, tmp_path, cfg)
    cap = max(png_size, jpeg_size) - 1
    out = tmp_path / "out"
    result = await runner(engine, LocalStorage(str(out)), max_task_output=cap).run(
        cfg, IMAGE, time.monotonic()
    )
    big, small = (0, 1) if png_size > jpeg_size else (1, 0)
    failed = result["tasks"][big]
    assert failed["status"] == "failed"
    assert failed["error"] == (
        f"output size {max(png_size, jpeg_size)} bytes exceeds the per-task limit of {cap} bytes"
    )
    assert result["tasks"][small]["status"] == "success"
    written = sorted(p.name for p in (out / "b").iterdir())
    assert written == [["a.png", "a.jpg"][small]]


async def test_total_output_cap(engine: Engine, tmp_path: Path) -> None:
    cfg = config(task("one", "png", "b", "1.png"), task("two", "png", "b", "2.png"))
    first, second = await sizes(engine, tmp_path, cfg)
    out = tmp_path / "out"
    cap = first + second - 1
    result = await runner(engine, LocalStorage(str(out)), max_total_output=cap).run(
        cfg, IMAGE, time.monotonic()
    )
    statuses = sorted(t["status"] for t in result["tasks"])
    assert statuses == ["failed", "success"]
    failed = next(t for t in result["tasks"] if t["status"] == "failed")
    assert failed["error"] == f"total output size of the request exceeds the limit of {cap} bytes"
    assert len(list((out / "b").iterdir())) == 1
    # Exactly at the cap everything fits.
    result = await runner(engine, LocalStorage(str(out)), max_total_output=cap + 1).run(
        cfg, IMAGE, time.monotonic()
    )
    assert [t["status"] for t in result["tasks"]] == ["success", "success"]


class BarrierStorage:
    """Blocks every upload until `parties` uploads are in flight at once (or times out),
    which only happens if tasks really run concurrently."""

    backend = "memory"

    def __init__(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)
        self.keys: list[str] = []

    async def put(
        self, bucket: str, key: str, data: bytes, content_type: str, acl: str | None
    ) -> str:
        async with asyncio.timeout(10):
            await self.barrier.wait()
        self.keys.append(key)
        return f"mem://{bucket}/{key}"

    async def close(self) -> None:
        return None


async def test_tasks_run_concurrently(engine: Engine) -> None:
    storage = BarrierStorage(4)
    cfg = config(*(task(f"t{i}", "png", "b", f"k{i}") for i in range(4)))
    result = await runner(engine, storage).run(cfg, IMAGE, time.monotonic())
    assert [t["status"] for t in result["tasks"]] == ["success"] * 4
    assert sorted(storage.keys) == ["k0", "k1", "k2", "k3"]
    assert [t["output"]["url"] for t in result["tasks"]] == [f"mem://b/k{i}" for i in range(4)]


class FailingStorage:
    """Fails uploads by key, with exceptions of different kinds."""

    backend = "memory"

    async def put(
        self, bucket: str, key: str, data: bytes, content_type: str, acl: str | None
    ) -> str:
        if key == "empty":
            raise RuntimeError()
        if key == "boom":
            raise ValueError("boom")
        await asyncio.sleep(0)  # a real suspension, as a network upload has
        return f"mem://{bucket}/{key}"

    async def close(self) -> None:
        return None


async def test_one_failing_task_never_affects_the_others(engine: Engine) -> None:
    cfg = config(
        task("a", "png", "b", "empty"),
        task("b", "png", "b", "fine"),
        task("c", "png", "b", "boom"),
        task("d", "pdf", "b", "fine2"),
    )
    result = await runner(engine, FailingStorage()).run(cfg, IMAGE, time.monotonic())
    tasks = result["tasks"]
    assert [t["id"] for t in tasks] == ["a", "b", "c", "d"]
    assert tasks[0]["error"] == "Unknown error"
    assert tasks[1]["status"] == "success"
    assert tasks[2]["error"] == "boom"
    assert tasks[3]["error"] == "image: encoding type pdf is not supported"
    for t in tasks:
        assert isinstance(t["durationMs"], int) and t["durationMs"] >= 0


async def test_every_failed_task_logs_one_warn_line(engine: Engine) -> None:
    """observability.md: `pipeline task failed` with `id` and `err` (the task's error text)
    for every failure; an unexpected one also leaves its stack for the operator."""
    stream = io.StringIO()
    cfg = config(
        task("a", "png", "b", "empty"),  # RuntimeError(): not deliberate
        task("b", "png", "b", "fine"),  # succeeds: no line
        task("c", "png", "b", "boom"),  # ValueError: not deliberate
        task("d", "pdf", "b", "fine"),  # an ImagedError: the client's problem
    )
    result = await runner(engine, FailingStorage(), Logger("json", "warn", stream)).run(
        cfg, IMAGE, time.monotonic()
    )
    errors = {t["id"]: t["error"] for t in result["tasks"] if t["status"] == "failed"}
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sorted((r["level"], r["msg"], r["id"], r["err"]) for r in records) == [
        ("warn", "pipeline task failed", "a", "Unknown error"),
        ("warn", "pipeline task failed", "c", "boom"),
        ("warn", "pipeline task failed", "d", "image: encoding type pdf is not supported"),
    ]
    assert {r["id"]: r["err"] for r in records} == errors
    stacks = {r["id"]: r.get("stack", "") for r in records}
    assert "RuntimeError" in stacks["a"] and "ValueError: boom" in stacks["c"]
    assert stacks["d"] == ""  # a deliberate failure has no stack


async def test_image_source_rules(engine: Engine) -> None:
    run = runner(engine, FailingStorage())
    with pytest.raises(BadRequest, match=r"^No image provided$"):
        await run.run(config(task("a")), None, time.monotonic())
    with pytest.raises(BadRequest, match=r"^URL fetching is disabled$"):
        await run.run(config(task("a"), url="http://example.com/x.png"), None, time.monotonic())
    # An upload always wins over a url.
    result = await run.run(
        config(task("a"), url="http://example.com/x.png"), IMAGE, time.monotonic()
    )
    assert result["tasks"][0]["status"] == "success"


async def test_total_duration_counts_from_the_given_start(engine: Engine) -> None:
    started = time.monotonic() - 1.5
    result = await runner(engine, FailingStorage()).run(config(task("a")), IMAGE, started)
    assert result["totalDurationMs"] >= 1500
    assert list(result) == ["totalDurationMs", "tasks"]


async def test_bucket_allow_list(engine: Engine, tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    run = PipelineRunner(
        engine, None, storage, Logger(stream=io.StringIO()), allowed_buckets=frozenset({"ok"})
    )
    cfg = config(task("a", "png", "ok", "a.png"), task("b", "png", "other", "b.png"))
    allowed, refused = (await run.run(cfg, IMAGE, time.monotonic()))["tasks"]
    assert allowed["status"] == "success"
    assert refused["error"] == "task 'b': bucket 'other' is not allowed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok"]


class Statuses:
    """A `PipelineObserver` that keeps what it is told."""

    def __init__(self) -> None:
        self.tasks: list[str] = []
        self.puts: list[tuple[str, float]] = []

    def task_done(self, status: str) -> None:
        self.tasks.append(status)

    def stored(self, backend: str, seconds: float) -> None:
        self.puts.append((backend, seconds))


async def test_the_observer_hears_task_statuses_and_storage_writes(
    engine: Engine, tmp_path: Path
) -> None:
    seen = Statuses()
    run = PipelineRunner(
        engine, None, LocalStorage(str(tmp_path)), Logger(stream=io.StringIO()), observer=seen
    )
    cfg = config(
        task("ok1", "png", "b", "one.png"),
        task("bad", "pdf", "b", "never"),  # fails before any write
        task("escape", "png", "b", "../out"),  # the write itself fails
        task("ok2", "png", "b", "two.png"),
    )
    result = await run.run(cfg, IMAGE, time.monotonic())
    assert [t["status"] for t in result["tasks"]] == ["success", "failed", "failed", "success"]
    assert sorted(seen.tasks) == ["failed", "failed", "success", "success"]
    assert [backend for backend, _ in seen.puts] == ["local"] * 3  # not the failed encode
    assert all(seconds >= 0 for _, seconds in seen.puts)
