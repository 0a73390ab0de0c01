"""`imaged batch` over a real directory tree with local worker processes: outputs at the
templated keys, one manifest line per source, exit statuses, the summary line, --dry-run,
--include/--limit, config errors, kill -9 then --resume, and SIGTERM/SIGINT."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvips
from tests.batch_support import (
    BUCKET,
    CONFIG,
    IMAGES,
    TREE,
    batch_command,
    by_source,
    expected_keys,
    make_tree,
    read_manifest,
    run_batch,
    write_config,
)
from tests.serverproc import CORPUS, clean_env
from tests.waiting import wait_until

SUMMARY = re.compile(
    r"processed (\d+) sources: (\d+) succeeded, (\d+) failed, (\d+) outputs, (\d+) bytes "
    r"in \d+\.\d s \(\d+\.\d images/s\)"
)


def summary(stdout: str) -> tuple[int, ...]:
    last = stdout.rstrip("\n").splitlines()[-1]
    match = SUMMARY.fullmatch(last)
    assert match, f"last line is not the summary: {last!r}"
    return tuple(int(g) for g in match.groups())


@pytest.fixture(scope="module")
def tree_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One run over the whole tree, shared by the assertions below."""
    base = tmp_path_factory.mktemp("batch")
    make_tree(base / "src")
    write_config(base / "config.json")
    result = run_batch(
        ["--config", "config.json", "--source", "src", "--output-dir", "out", "--workers", "2"],
        cwd=base,
    )
    return base, result


def test_tree_outputs_at_templated_keys(
    tree_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    base, result = tree_run
    assert result.returncode == 1, result.stderr  # the corrupt file and the text file failed
    written = {
        str(p.relative_to(base / "out" / BUCKET)) for p in (base / "out").rglob("*") if p.is_file()
    }
    expected = {key for source in IMAGES for key in expected_keys(source).values()}
    assert written == expected
    thumb = pyvips.Image.new_from_file(
        str(base / "out" / BUCKET / "thumbs/2024/trip/IMG 0042.webp")
    )
    # Landscape_6 is stored 1200x1800 with orientation 6: upright it is 1800x1200.
    assert (thumb.width, thumb.height) == (64, 43)


def test_tree_manifest(tree_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    base, _ = tree_run
    records = read_manifest(base / "imaged-batch.jsonl")  # the default, in the current dir
    assert sorted(r["source"] for r in records) == sorted(TREE)
    for record in records:
        assert list(record)[:3] == ["source", "status", "durationMs"]
    found = by_source(records)
    for source in IMAGES:
        record = found[source]
        assert record["status"] == "success"
        assert [t["id"] for t in record["tasks"]] == ["thumb", "large"]
        for task in record["tasks"]:
            assert "durationMs" not in task
            output = task["output"]
            key = expected_keys(source)[task["id"]]
            assert output["url"] == f"file://{base / 'out' / BUCKET / key}"
            assert output["size"] == (base / "out" / BUCKET / key).stat().st_size
    corrupt = found["2024/corrupt.jpg"]
    assert corrupt["status"] == "failed"
    assert all(
        t["status"] == "failed" and t["error"].startswith("image: ") for t in corrupt["tasks"]
    )
    text = found["notes.txt"]
    assert [t["error"] for t in text["tasks"]] == ["image: unknown image type"] * 2


def test_tree_summary(tree_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    base, result = tree_run
    processed, succeeded, failed, outputs, size = summary(result.stdout)
    assert (processed, succeeded, failed, outputs) == (6, 4, 2, 8)
    assert size == sum(p.stat().st_size for p in (base / "out").rglob("*") if p.is_file())
    assert "listed 6 sources" in result.stderr  # plain progress: stderr is not a TTY


def test_resume_skips_successes_and_retries_failures(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    write_config(tmp_path / "config.json")
    args = ["--config", "config.json", "--source", "src", "--output-dir", "out", "--workers", "1"]
    assert run_batch(args, cwd=tmp_path).returncode == 1
    (tmp_path / "src/2024/corrupt.jpg").write_bytes((CORPUS / "webp-alpha.webp").read_bytes())
    (tmp_path / "src/notes.txt").unlink()
    again = run_batch([*args, "--resume"], cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert summary(again.stdout)[:3] == (1, 1, 0)  # only the formerly corrupt one
    records = read_manifest(tmp_path / "imaged-batch.jsonl")
    assert [r["source"] for r in records[6:]] == ["2024/corrupt.jpg"]
    assert records[6]["status"] == "success"


def test_dry_run_lists_keys_and_processes_nothing(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    write_config(tmp_path / "config.json")
    result = run_batch(
        ["--config", "config.json", "--source", "src", "--output-dir", "out", "--dry-run",
         "--include", "*.JPG", "--include", "*/DEEP.*"],
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [tuple(line.split("\t")) for line in lines[:-2]]
    expected = [
        (source, task_id, f"{BUCKET}/{key}")
        for source in ("top.jpg", "2024/corrupt.jpg", "2024/trip/IMG 0042.JPG",
                       "nested/a/b/c/deep.webp")
        for task_id, key in expected_keys(source).items()
    ]  # fmt: skip
    assert sorted(rows) == sorted(expected)
    assert lines[-2] == "dry run: 4 sources, 8 outputs"
    assert summary(result.stdout)[0] == 0
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "imaged-batch.jsonl").exists()


def test_limit_stops_after_n_sources(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    write_config(tmp_path / "config.json")
    result = run_batch(
        ["--config", "-", "--source", "src", "--output-dir", "out", "--limit", "2",
         "--include", "*.jpg", "--manifest", "m.jsonl", "--progress", "bar"],
        cwd=tmp_path, stdin=json.dumps(CONFIG),
    )  # fmt: skip
    assert result.returncode in (0, 1)
    assert len(read_manifest(tmp_path / "m.jsonl")) == 2
    assert summary(result.stdout)[0] == 2
    assert "batch: 100%" in result.stderr and "2/2" in result.stderr  # the tqdm bar


def _task(key: str, **transform: object) -> dict[str, object]:
    return {
        "id": "t",
        "transform": {"format": "webp", **transform},
        "output": {"bucket": "b", "key": key},
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"url": "http://a.example/x.jpg", "tasks": [_task("{name}")]},
         "url: not allowed in a batch config"),
        ({"tasks": [_task("{foo}.webp")]}, "task[0].output.key: unknown placeholder {foo}"),
        ({"tasks": [_task("{stem.webp")]},
         "task[0].output.key: unmatched '{' (write '{{' for a literal brace)"),
        ({"tasks": [_task("a}.webp")]},
         "task[0].output.key: unmatched '}' (write '}}' for a literal brace)"),
        ({"tasks": [_task("{stem}", width=0)]}, "task[0].transform.width: must be at least 1"),
        ({"tasks": []}, "at least one task is required"),
    ],
)  # fmt: skip
def test_config_errors_exit_2(tmp_path: Path, config: object, message: str) -> None:
    (tmp_path / "src").mkdir()
    write_config(tmp_path / "config.json", config)
    result = run_batch(
        ["--config", "config.json", "--source", "src", "--output-dir", "out"], cwd=tmp_path
    )
    assert (result.returncode, result.stderr) == (2, f"imaged batch: {message}\n")
    assert not (tmp_path / "imaged-batch.jsonl").exists()


def test_usage_and_setting_errors_exit_2(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json")
    missing = run_batch(["--source", "src"], cwd=tmp_path)
    assert missing.returncode == 2
    assert "--config" in missing.stderr
    bad = run_batch(
        ["--config", "config.json", "--source", ".", "--output-dir", "o", "--body-limit", "1k"],
        cwd=tmp_path,
    )
    assert (bad.returncode, bad.stderr) == (2, "imaged batch: Invalid body limit value=1k\n")
    s3 = run_batch(["--config", "config.json", "--source", "s3://bucket/p"], cwd=tmp_path)
    assert s3.returncode == 2
    assert "AWS_ACCESS_KEY_ID" in s3.stderr


def test_ray_missing_exits_2(tmp_path: Path) -> None:
    write_config(tmp_path / "config.json")
    code = "import sys; sys.modules['ray'] = None; from imaged.cli import main; sys.exit(main())"
    result = subprocess.run(
        [sys.executable, "-c", code, "batch", "--config", "config.json", "--source", ".",
         "--output-dir", "o", "--ray", "local"],
        capture_output=True, text=True, env=clean_env(), cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (
        2,
        "imaged batch: --ray needs the ray package: pip install 'imaged[ray]'\n",
    )


def _many_sources(root: Path, count: int) -> list[str]:
    """`count` copies of an 1800x1200 corpus JPEG: slow enough to stop mid-run."""
    data = (CORPUS / "orientation" / "Landscape_1.jpg").read_bytes()
    keys = [f"set/img{i:02d}.jpg" for i in range(count)]
    for key in keys:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    return keys


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


SLOW_ARGS = ["--config", "config.json", "--source", "src", "--output-dir", "out", "--workers", "1"]


@contextlib.contextmanager
def _slow_batch(
    tmp_path: Path, count: int
) -> Iterator[tuple[subprocess.Popen[str], list[str], Path]]:
    """A running batch over `count` slow sources, one worker; killed if still running."""
    keys = _many_sources(tmp_path / "src", count)
    write_config(tmp_path / "config.json")
    proc = subprocess.Popen(
        batch_command(SLOW_ARGS), cwd=tmp_path, env=clean_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield proc, keys, tmp_path / "imaged-batch.jsonl"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text()
        found += [int(p) for p in text.split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_kill_9_then_resume_processes_every_source_once(tmp_path: Path) -> None:
    with _slow_batch(tmp_path, 16) as (proc, keys, manifest):
        wait_until(lambda: _lines(manifest) >= 3, "three manifest lines")
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert workers
    wait_until(lambda: not any(_alive(p) for p in workers), "the workers to die with the driver")
    first = read_manifest(manifest)
    assert 3 <= len(first) < len(keys), "the run was not stopped mid-way"
    with manifest.open("a") as file:  # a crash in the middle of writing a line
        file.write('{"source":"set/img15.jpg","sta')
    resumed = run_batch([*SLOW_ARGS, "--resume"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert summary(resumed.stdout)[0] == len(keys) - len(first)
    records = read_manifest(manifest)  # the torn line was cut off: every line parses
    successes = sorted(r["source"] for r in records if r["status"] == "success")
    assert successes == keys  # every source exactly once
    assert len(records) == len(keys)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_finishes_in_flight_and_exits(tmp_path: Path, signum: int, status: int) -> None:
    with _slow_batch(tmp_path, 16) as (proc, keys, manifest):
        wait_until(lambda: _lines(manifest) >= 1, "a manifest line")
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr
    processed = summary(stdout)[0]
    records = read_manifest(manifest)
    assert len(records) == processed < len(keys)
    assert all(r["status"] == "success" for r in records)
    assert "finishing the sources in flight" in stderr


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes((CORPUS / "jpeg-small-nikon-p6000-gps.jpg").read_bytes())
    src = tmp_path / "src"
    src.mkdir()
    (src / "real.jpg").write_bytes((CORPUS / "jpeg-small-nikon-p6000-gps.jpg").read_bytes())
    os.symlink(outside / "secret.jpg", src / "link.jpg")
    os.symlink(outside, src / "linked-dir")
    write_config(tmp_path / "config.json")
    result = run_batch(
        ["--config", "config.json", "--source", "src", "--output-dir", "src/out", "--dry-run"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert {line.split("\t")[0] for line in result.stdout.splitlines()[:-2]} == {"real.jpg"}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def test_a_killed_worker_is_replaced_and_its_sources_run_again(tmp_path: Path) -> None:
    """The OOM killer takes a worker process: the pool is restarted, the sources that
    were in flight run again, and the batch still ends with every source a success."""
    with _slow_batch(tmp_path, 10) as (proc, keys, manifest):
        wait_until(lambda: _lines(manifest) >= 1, "a manifest line")
        workers = [
            pid
            for pid in _children(proc.pid)
            if "spawn_main" in _cmdline(pid) and "resource_tracker" not in _cmdline(pid)
        ]
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "a worker process died: restarting the workers" in stderr
    assert summary(stdout)[:3] == (len(keys), len(keys), 0)
    records = read_manifest(manifest)
    assert sorted(r["source"] for r in records) == keys


def test_source_metadata_and_the_body_limit(tmp_path: Path) -> None:
    """`metadata` of the config puts the source's metadata in its line; a source over
    `--body-limit` fails alone, with the reason and no tasks."""
    src = tmp_path / "src"
    src.mkdir()
    small = CORPUS / "jpeg-small-nikon-p6000-gps.jpg"  # 161713 bytes
    big = CORPUS / "orientation" / "Landscape_1.jpg"  # about 350 kB
    (src / "small.jpg").write_bytes(small.read_bytes())
    (src / "big.jpg").write_bytes(big.read_bytes())
    write_config(tmp_path / "config.json", {**CONFIG, "metadata": {"exif": True}})
    result = run_batch(
        ["--config", "config.json", "--source", "src", "--output-dir", "out",
         "--body-limit", "200000"],
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    found = by_source(read_manifest(tmp_path / "imaged-batch.jsonl"))
    assert list(found["small.jpg"]) == ["source", "status", "durationMs", "metadata", "tasks"]
    metadata = found["small.jpg"]["metadata"]
    assert (metadata["format"], metadata["width"], metadata["height"]) == ("jpeg", 640, 480)
    assert metadata["exif"]["make"] == "NIKON"
    size = big.stat().st_size
    assert found["big.jpg"] == {
        "source": "big.jpg",
        "status": "failed",
        "durationMs": found["big.jpg"]["durationMs"],
        "error": f"source of {size} bytes exceeds the body limit of 200000 bytes",
    }
