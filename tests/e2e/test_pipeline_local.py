"""PUT /pipeline with the local-directory back-end (`--output-dir`): outputs land as
DIR/<bucket>/<key>, and no request can write outside DIR."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.pipeline_helpers import put_form, sample_image, task
from tests.serverproc import CORPUS, ServerProcess, run_cli

NO_AWS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
SOURCE = (CORPUS / "png-palette-8bit.png").read_bytes()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`out/` is the output directory; `outside/` must never receive anything."""
    base = tmp_path_factory.mktemp("local-backend")
    (base / "out").mkdir()
    (base / "outside").mkdir()
    return base


@pytest.fixture(scope="module")
def client(sandbox: Path) -> Iterator[httpx.Client]:
    args = ["--enable-pipeline", "--output-dir", str(sandbox / "out"), "--concurrency", "2"]
    with ServerProcess(args, NO_AWS) as proc, proc.client() as c:
        yield c


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def run(
    client: httpx.Client, tasks: list[dict[str, Any]], image: bytes = SOURCE
) -> list[dict[str, Any]]:
    response = put_form(client, {"tasks": tasks}, image)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = json.loads(response.text)["tasks"]
    return results


def test_outputs_land_under_the_directory(client: httpx.Client, sandbox: Path) -> None:
    out = sandbox / "out"
    tasks = [
        task("w", "webp", "photos", "2024/06/small.webp", width=64),
        task("j", "jpeg", "photos", "big one (1).jpg", quality=80, acl="public-read"),
    ]
    results = run(client, tasks)
    for result, spec, query in zip(
        results, tasks, ["format=webp&width=64", "format=jpeg&quality=80"], strict=True
    ):
        assert result["status"] == "success", result
        path = out / "photos" / spec["output"]["key"]
        assert result["output"]["url"] == f"file://{path}"
        expected = client.put(f"/transform?{query}", content=SOURCE)
        assert path.read_bytes() == expected.content
        assert result["output"]["size"] == path.stat().st_size
    assert not [name for name in files(out) if ".imaged-" in name]  # no temp files left


def test_overwrite_keeps_one_complete_file(client: httpx.Client, sandbox: Path) -> None:
    target = sandbox / "out" / "photos" / "same.png"
    run(client, [task("a", "png", "photos", "same.png")], sample_image(40, 40))
    run(client, [task("b", "png", "photos", "same.png")], sample_image(20, 10))
    meta = json.loads(client.put("/metadata", content=target.read_bytes()).text)
    assert (meta["width"], meta["height"]) == (20, 10)


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        ("photos", "../../outside/escape.png"),
        ("photos", "a/../../../outside/escape.png"),
        ("..", "outside/escape.png"),
        ("photos", "/tmp/escape.png"),
        ("photos", f"/{'x' * 3}/../escape.png"),
        (".", "escape.png"),
        ("photos/../..", "escape.png"),
        ("photos", "dir/"),
        ("photos", "a//b.png"),
    ],
)
def test_traversal_is_refused_per_task(
    client: httpx.Client, sandbox: Path, bucket: str, key: str
) -> None:
    before = files(sandbox)
    bad, good = run(
        client, [task("bad", "png", bucket, key), task("good", "png", "photos", "fine.png")]
    )
    assert bad["status"] == "failed"
    assert bad["error"].startswith(("invalid key", "invalid bucket")), bad
    assert good["status"] == "success"  # the other task is unaffected
    assert files(sandbox / "outside") == []
    assert set(files(sandbox)) - set(before) <= {"out/photos/fine.png"}
    assert not Path("/tmp/escape.png").exists()


def test_symlinks_are_never_followed(client: httpx.Client, sandbox: Path) -> None:
    out, outside = sandbox / "out", sandbox / "outside"
    (out / "linked").symlink_to(outside)
    (out / "photos" / "nested").mkdir(parents=True, exist_ok=True)
    (out / "photos" / "nested" / "hop").symlink_to(outside)
    victim = sandbox / "victim.txt"
    victim.write_text("keep me")
    (out / "photos" / "victim.png").symlink_to(victim)
    results = run(
        client,
        [
            task("bucket-link", "png", "linked", "x.png"),
            task("dir-link", "png", "photos", "nested/hop/x.png"),
            task("file-link", "png", "photos", "victim.png"),
        ],
    )
    assert results[0]["error"] == "cannot write 'linked/x.png': 'linked' is a symbolic link"
    assert results[1]["error"] == "cannot write 'photos/nested/hop/x.png': 'hop' is a symbolic link"
    assert results[2]["status"] == "success"  # the link itself is replaced by the new file
    assert files(outside) == []
    assert victim.read_text() == "keep me"
    assert not os.path.islink(out / "photos" / "victim.png")


def test_startup_needs_credentials_only_for_s3(tmp_path: Path) -> None:
    result = run_cli(["--enable-pipeline", "--port", "1"], env={**NO_AWS, "OUTPUT_DIR": ""})
    assert result.returncode == 1
    assert "Pipeline endpoint requires AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in result.stdout
