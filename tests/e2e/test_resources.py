"""CPUs and the memory budget of the real server (resources.md): the startup lines with their
`source=`, the default budget from a cgroup limit, 16 concurrent 48 MP → 400 px transforms plus
16 full-size 12 MP PNG → TIFF conversions under `--memory-budget 300m --concurrency 8` (all
200, peak RSS bounded), the 400 of an operation over the whole budget, and the three metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench import budget as load
from tests.pipeline_helpers import put_form, task
from tests.scrape import delta, scrape
from tests.serverkit import free_port
from tests.serverproc import CORPUS, ServerProcess
from tests.waiting import wait_until

OVER_BUDGET = "image: Input image needs more memory than the server allows"
# Above the budget and the idle RSS: the bodies waiting for a permit (16 × ≈ 6.5 MB at most),
# aiohttp's buffers and the allocator's slack. The benchmark reports the measured figure.
MARGIN_MB = 192


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """The synthetic 48 MP JPEG and 12 MP PNG, made once per session."""
    jpeg, png = load.make_inputs(tmp_path_factory.mktemp("budget"))
    return jpeg.read_bytes(), png.read_bytes()


@pytest.fixture(scope="module")
def budgeted() -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    args = ["--concurrency", str(load.CONCURRENCY), *load.server_args(load.BUDGET)]
    with ServerProcess([*args, "--metrics-listen", f"127.0.0.1:{port}"]) as server:
        yield server, f"http://127.0.0.1:{port}"


def test_startup_lines(budgeted: tuple[ServerProcess, str]) -> None:
    server, _ = budgeted
    assert "concurrency value=8 source=flag" in server.log()
    assert f"memory budget value={300 << 20} source=flag" in server.log()


def test_defaults_and_env_sources() -> None:
    with ServerProcess(env={"CONCURRENCY": "3", "MEMORY_BUDGET": "1g"}) as server:
        assert "concurrency value=3 source=env" in server.log()
        assert f"memory budget value={1 << 30} source=env" in server.log()
    with ServerProcess() as server:
        line = next(x for x in server.lines() if "concurrency value=" in x)
        assert line.endswith(("source=affinity", "source=cgroup"))
        assert "memory budget value=" in server.log()


def test_load_within_the_budget(
    budgeted: tuple[ServerProcess, str], inputs: tuple[bytes, bytes]
) -> None:
    server, metrics = budgeted
    before = scrape(metrics)
    jpeg, png = inputs
    result = load.measure(server.proc.pid, server.url, jpeg, png, load.BUDGET)
    assert result.statuses == {200: 2 * load.EACH}, server.log()
    assert result.peak_mb < load.BUDGET_MIB + result.idle_mb + MARGIN_MB, result
    after = scrape(metrics)
    assert after.get("imaged_memory_budget_bytes") == 300 << 20
    # 8 conversions (≈ 64 MB each) cannot run at once in 300 MB: some waited for memory.
    assert delta(before, after, "imaged_memory_waits_total") >= 1
    wait_until(
        lambda: scrape(metrics).get("imaged_memory_reserved_bytes") == 0,
        "every reservation released",
    )


def test_over_the_whole_budget_is_refused_at_once() -> None:
    data = (CORPUS / "jpeg-12mp-olympus-ep3.jpg").read_bytes()
    port = free_port()
    args = ["--memory-budget", "40m", "--metrics-listen", f"127.0.0.1:{port}"]
    with ServerProcess(args) as server, server.client() as client:
        refused = client.put("/transform?format=tiff", content=data)  # needs ≈ 84 MB
        assert (refused.status_code, refused.text) == (400, OVER_BUDGET)
        small = client.put("/transform?width=400", content=data)
        assert small.status_code == 200
        meta = client.put("/metadata?stats=true", content=data)  # ≈ 55 MB
        assert (meta.status_code, meta.text) == (400, OVER_BUDGET)
        samples = scrape(f"http://127.0.0.1:{port}")
        assert samples.get("imaged_memory_budget_bytes") == 40 << 20
        assert samples.get("imaged_memory_waits_total") == 0


def test_pipeline_tasks_reserve_too(tmp_path: Path) -> None:
    """Each pipeline task reserves its own estimate: the full-size one fails with the text,
    the small one succeeds."""
    data = (CORPUS / "jpeg-12mp-olympus-ep3.jpg").read_bytes()
    args = ["--memory-budget", "40m", "--enable-pipeline", "--output-dir", str(tmp_path)]
    with ServerProcess(args) as server, server.client() as client:
        tasks = [task("big", "tiff", "out"), task("small", "jpeg", "out", width=400)]
        response = put_form(client, {"tasks": tasks}, data)
        assert response.status_code == 200, response.text
        results = {r["id"]: r for r in json.loads(response.text)["tasks"]}
    assert results["big"]["status"] == "failed"
    assert OVER_BUDGET in json.dumps(results["big"])
    assert results["small"]["status"] == "success"
    assert (tmp_path / "out" / "small.jpeg").is_file()


def test_default_budget_is_absent_without_a_cgroup_limit() -> None:
    """This sandbox has no cgroup memory limit: the default is 0, `source=none`; with a
    limit it would be 75 % of it (tests/test_resources.py on fabricated trees)."""
    from imaged.resources import cgroup_memory

    with ServerProcess() as server:
        if cgroup_memory() is None:
            assert "memory budget value=0 source=none" in server.log()
        else:
            assert "source=cgroup" in server.log()
