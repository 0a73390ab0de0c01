"""Helpers of the `imaged batch` tests: a source tree with awkward names, the config over
it, running the command as a subprocess and reading its manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.serverproc import CORPUS, clean_env

SMALL_JPEG = CORPUS / "jpeg-small-nikon-p6000-gps.jpg"
# source key → corpus file (None: made up below)
TREE: dict[str, Path | None] = {
    "top.jpg": SMALL_JPEG,
    "2024/trip/IMG 0042.JPG": CORPUS / "orientation" / "Landscape_6.jpg",
    "sp ace/ünïcode ñ.png": CORPUS / "png-palette-8bit.png",
    "nested/a/b/c/deep.webp": CORPUS / "webp-alpha.webp",
    "2024/corrupt.jpg": None,
    "notes.txt": None,
}
IMAGES = ("top.jpg", "2024/trip/IMG 0042.JPG", "sp ace/ünïcode ñ.png", "nested/a/b/c/deep.webp")
BUCKET = "images"
CONFIG: dict[str, Any] = {
    "tasks": [
        {
            "id": "thumb",
            "transform": {"format": "webp", "width": 64},
            "output": {"bucket": BUCKET, "key": "thumbs/{dir}/{stem}.{format}"},
        },
        {
            "id": "large",
            "transform": {"format": "jpeg", "width": 200},
            "output": {"bucket": BUCKET, "key": "large/{dir}/{stem}{{{id}}}.{ext}"},
        },
    ]
}


def expected_keys(source: str) -> dict[str, str]:
    """What CONFIG's templates give for `source` (written out by hand)."""
    directory, _, name = source.rpartition("/")
    stem, _, ext = name.rpartition(".")
    prefix = f"{directory}/" if directory else ""
    return {
        "thumb": f"thumbs/{prefix}{stem}.webp",
        "large": f"large/{prefix}{stem}{{large}}.{ext}",
    }


def make_tree(root: Path) -> Path:
    for key, origin in TREE.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if origin is not None:
            path.write_bytes(origin.read_bytes())
    (root / "2024/corrupt.jpg").write_bytes(SMALL_JPEG.read_bytes()[:4000])
    (root / "notes.txt").write_text("not an image\n")
    return root


def write_config(path: Path, config: Any = None) -> Path:
    path.write_text(json.dumps(CONFIG if config is None else config))
    return path


def batch_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "imaged", "batch", *args]


def run_batch(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    environ = clean_env(env)
    return subprocess.run(
        batch_command(args),
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=timeout,
        input=stdin,
    )


def read_manifest(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def by_source(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {record["source"]: record for record in records}


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A manifest record without what differs between runs: durations and output URLs."""
    out = {k: v for k, v in record.items() if k != "durationMs"}
    tasks = []
    for task in record.get("tasks", ()):
        task = dict(task)
        if "output" in task:
            task["output"] = {k: v for k, v in task["output"].items() if k != "url"}
        tasks.append(task)
    if tasks:
        out["tasks"] = tasks
    return out


def files_below(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
