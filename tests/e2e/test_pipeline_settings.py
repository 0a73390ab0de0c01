"""The pipeline's own settings, over HTTP: bucket allow-list and output-size caps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.pipeline_helpers import put_form, sample_image, task
from tests.serverproc import ServerProcess


def test_bucket_allow_list_and_per_task_cap(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server(
        "--enable-pipeline", "--output-dir", str(tmp_path),
        "--pipeline-buckets", "images, thumbs", "--max-pipeline-output", "3000",
    )  # fmt: skip
    config = {
        "tasks": [
            task("elsewhere", bucket="other"),
            task("big", fmt="raw", bucket="images"),  # 96×64×3 = 18432 bytes
            task("small", fmt="png", bucket="thumbs", width=8),
        ]
    }
    with server.client() as client:
        response = put_form(client, config, sample_image())
    assert response.status_code == 200
    results = {t["id"]: t for t in response.json()["tasks"]}
    assert results["elsewhere"]["status"] == "failed"
    assert results["elsewhere"]["error"] == "task 'elsewhere': bucket 'other' is not allowed"
    assert results["big"]["status"] == "failed"
    assert (
        results["big"]["error"]
        == "output size 18432 bytes exceeds the per-task limit of 3000 bytes"
    )
    assert results["small"]["status"] == "success"
    assert (tmp_path / "thumbs" / "small.png").stat().st_size == results["small"]["output"]["size"]
    assert not (tmp_path / "other").exists()
    assert not (tmp_path / "images" / "big.raw").exists()


def test_total_output_cap(start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(
        "--enable-pipeline", "--output-dir", str(tmp_path), "--max-pipeline-total-output", "1",
    )  # fmt: skip
    with server.client() as client:
        response = put_form(client, {"tasks": [task("one", width=8)]}, sample_image())
    assert response.status_code == 200
    [result] = response.json()["tasks"]
    assert result["status"] == "failed"
    assert result["error"] == "total output size of the request exceeds the limit of 1 bytes"
