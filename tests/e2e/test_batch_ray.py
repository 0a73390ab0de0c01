"""`imaged batch --ray` on a real local Ray cluster (2 CPUs, one per test session): the
same outputs, byte for byte, and the same manifest as local worker processes.

The command runs in this process, inside the already-initialised Ray (as a driver script
would call it); the local-worker run it is compared with is the usual subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.batch_support import (
    TREE,
    by_source,
    comparable,
    files_below,
    make_tree,
    read_manifest,
    run_batch,
    write_config,
)

from imaged.batch.command import PIPELINE_SETTINGS
from imaged.cli import main
from imaged.settings import BY_NAME

ray = pytest.importorskip("ray")  # in the test extra: always there under `make test`


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_outputs_and_manifest_as_local_workers(
    ray_cluster: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_tree(tmp_path / "src")
    write_config(tmp_path / "config.json")
    common = ["--config", "config.json", "--source", "src", "--progress", "none"]
    local = run_batch(
        [*common, "--output-dir", "out-local", "--manifest", "local.jsonl", "--workers", "2"],
        cwd=tmp_path,
    )
    assert local.returncode == 1, local.stderr

    monkeypatch.chdir(tmp_path)
    for name in PIPELINE_SETTINGS:
        monkeypatch.delenv(BY_NAME[name].env, raising=False)
    status = main(
        ["batch", *common, "--output-dir", "out-ray", "--manifest", "ray.jsonl", "--ray", "local"]
    )
    printed = capsys.readouterr().out
    assert status == local.returncode
    assert (
        printed.splitlines()[-1].split(" in ")[0] == local.stdout.splitlines()[-1].split(" in ")[0]
    )
    assert ray_cluster.is_initialized()  # the command leaves a cluster it did not start alone

    assert files_below(tmp_path / "out-ray") == files_below(tmp_path / "out-local")
    from_local = by_source(read_manifest(tmp_path / "local.jsonl"))
    from_ray = by_source(read_manifest(tmp_path / "ray.jsonl"))
    assert set(from_ray) == set(TREE)
    for source, record in from_ray.items():
        assert comparable(record) == comparable(from_local[source])
        for task in record.get("tasks", ()):
            if "output" in task:
                assert task["output"]["url"].startswith(f"file://{tmp_path / 'out-ray'}/")


def test_ray_auto_joins_the_running_cluster_from_another_process(
    ray_cluster: Any, tmp_path: Path
) -> None:
    """A separate driver process (`RAY_ADDRESS`, as on a cluster node): same outputs."""
    make_tree(tmp_path / "src")
    write_config(tmp_path / "config.json")
    address = ray_cluster.get_runtime_context().gcs_address
    result = run_batch(
        ["--config", "config.json", "--source", "src", "--output-dir", "out", "--ray", "auto",
         "--include", "*.jpg", "--include", "*.png"],
        cwd=tmp_path,
        env={"RAY_ADDRESS": address},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # corrupt.jpg
    assert result.stdout.splitlines()[-1].startswith("processed 4 sources: 3 succeeded, 1 failed")
    found = by_source(read_manifest(tmp_path / "imaged-batch.jsonl"))
    # `*.jpg` is case-insensitive: it takes `IMG 0042.JPG` too.
    assert set(found) == {"top.jpg", "2024/corrupt.jpg", "2024/trip/IMG 0042.JPG",
                          "sp ace/ünïcode ñ.png"}  # fmt: skip
    assert ray_cluster.is_initialized()  # the other driver left the cluster running
