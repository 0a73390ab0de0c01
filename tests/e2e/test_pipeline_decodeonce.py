"""PUT /pipeline decodes its source once for all tasks (batch.md, "Decode once for many
outputs"): over HTTP every stored output has exactly the dimensions of the same
`/transform` and its pixels within the tolerance, a failing task fails alone, and the
metrics still count one transform operation per task."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.pipeline_helpers import put_form, task
from tests.scrape import delta, scrape
from tests.serverkit import free_port
from tests.serverproc import CORPUS, ServerProcess
from tests.transform_support import DECODE_ONCE_MAD, mad

OPERATIONS = "imaged_image_operations_total"
# (source, tasks' transform options as /transform queries)
CASES = {
    "jpeg-12mp-xiaomi-mi9t-orient6.jpg": [
        "format=webp&width=1600",
        "format=png&width=800",
        "format=png&width=400&height=400&fit=cover&position=attention",
        "format=jpeg&width=200&height=300&fit=contain",
        "format=png&height=120&greyscale=true",
    ],
    "png-rgba-2048x1536.png": [
        "format=png&width=700",
        "format=webp&width=300&height=300&fit=fill",
        "format=png&width=150&blur=2",
    ],
}


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str, Path]]:
    port = free_port()
    out = tmp_path_factory.mktemp("decodeonce")
    args = ["--concurrency", "2", "--metrics-listen", f"127.0.0.1:{port}"]
    args += ["--enable-pipeline", "--output-dir", str(out)]
    with ServerProcess(args) as server, server.client() as client:
        yield client, f"http://127.0.0.1:{port}", out


def json_value(text: str) -> Any:
    """A query value as the pipeline's JSON value: 400 → 400, true → True, else the text."""
    if text.isdigit():
        return int(text)
    return {"true": True, "false": False}.get(text, text)


def spec(task_id: str, query: str) -> dict[str, Any]:
    """The pipeline task doing what `/transform?<query>` does, stored as `<task_id>.<fmt>`."""
    options = {name: json_value(value) for name, value in (p.split("=") for p in query.split("&"))}
    fmt = options.pop("format")
    return task(task_id, fmt, "out", f"{task_id}.{fmt}", **options)


@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_match_transform(observed: tuple[httpx.Client, str, Path], name: str) -> None:
    client, metrics, out = observed
    source = (CORPUS / name).read_bytes()
    queries = CASES[name]
    tasks = [spec(f"{Path(name).stem}-{i}", q) for i, q in enumerate(queries)]
    before = scrape(metrics)
    response = put_form(client, {"tasks": tasks}, source)
    after = scrape(metrics)
    assert response.status_code == 200, response.text
    results = json.loads(response.text)["tasks"]
    for result, query, spec_ in zip(results, queries, tasks, strict=True):
        assert result["status"] == "success", result
        expected = client.put(f"/transform?{query}", content=source)
        assert expected.status_code == 200
        width, height = (
            int(expected.headers["X-Image-Width"]),
            int(expected.headers["X-Image-Height"]),
        )
        assert (result["output"]["width"], result["output"]["height"]) == (width, height), query
        stored = (out / "out" / spec_["output"]["key"]).read_bytes()
        assert mad(stored, expected.content) <= DECODE_ONCE_MAD, query
    formats = [q.split("&")[0].removeprefix("format=") for q in queries]
    for fmt in set(formats):
        counted = delta(before, after, OPERATIONS, operation="transform", format=fmt, outcome="ok")
        assert counted == formats.count(fmt), fmt


def test_a_failing_task_fails_alone(observed: tuple[httpx.Client, str, Path]) -> None:
    client, metrics, _ = observed
    source = (CORPUS / "jpeg-12mp-olympus-ep3.jpg").read_bytes()
    tasks = [
        spec("fine", "format=webp&width=400"),
        spec("huge", "format=webp&width=16384&height=10&fit=contain"),  # WebP: ≤ 16383
        spec("also", "format=png&width=300"),
    ]
    before = scrape(metrics)
    response = put_form(client, {"tasks": tasks}, source)
    after = scrape(metrics)
    assert response.status_code == 200, response.text
    results = json.loads(response.text)["tasks"]
    assert [r["status"] for r in results] == ["success", "failed", "success"]
    assert results[1]["error"] == "image: Processed image is too large for the WebP format"
    labels = {"operation": "transform", "format": "webp"}
    assert delta(before, after, OPERATIONS, **labels, outcome="ok") == 1
    assert delta(before, after, OPERATIONS, **labels, outcome="error") == 1
