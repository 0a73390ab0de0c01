"""The batch section of `make bench` (batch.md): images/s of `imaged batch` over
corpus-derived JPEGs with local workers and with `--ray local`, against a loop of
`PUT /pipeline` requests to the server on the same machine, and the cores kept busy.

Sources: the corpus's RGB camera JPEGs, resized to 1600–2400 px wide and saved at q85
(`count` of them, default 200). Config: the spec's four tasks, WebP 1600, 800, 400 and
200 px wide. Every variant writes to a fresh local directory.

CPU is counted for the whole process tree (the batch driver, its worker processes, and
with Ray the cluster it starts), sampled from /proc every 50 ms; for the server variant it
is the server process, the clients (one thread per core) are not charged. `busy cores` is
CPU time / wall time: the cores the variant kept busy, out of `cores`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.procstat import cpu_seconds
from bench.servers import Imaged
from bench.workloads import CORPUS

SOURCES = (
    "jpeg-12mp-olympus-ep3.jpg",
    "jpeg-9mp-nokia83-gps.jpg",
    "jpeg-8mp-iphone6-gps.jpg",
    "jpeg-3mp-canon-sx60-orient6.jpg",
    "jpeg-12mp-xiaomi-mi9t-orient6.jpg",
    "jpeg-small-nikon-p6000-gps.jpg",
)
WIDTHS = (1600, 2000, 2400)
CONFIG: dict[str, Any] = {
    "tasks": [
        {
            "id": f"w{width}",
            "transform": {"format": "webp", "width": width},
            "output": {"bucket": "bench", "key": f"{{dir}}/{{stem}}-{width}.webp"},
        }
        for width in (1600, 800, 400, 200)
    ]
}


def make_sources(dest: Path, count: int) -> list[Path]:
    import pyvips

    originals = [pyvips.Image.new_from_file(str(CORPUS / name)) for name in SOURCES]
    paths = []
    for i in range(count):
        image = originals[i % len(originals)]
        width = WIDTHS[i % len(WIDTHS)]
        path = dest / f"{i // 50:02d}" / f"img{i:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.autorot().thumbnail_image(width).jpegsave(str(path), Q=85)
        paths.append(path)
    return paths


def _tree(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        current = stack.pop()
        out.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


class TreeCPU:
    """CPU seconds of a process and all its descendants (each process's last sample)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for pid in _tree(self.pid):
            try:
                self.seen[pid] = cpu_seconds(pid)
            except (OSError, ValueError, IndexError):
                continue

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def stop(self) -> float:
        self._sample()
        self._stop.set()
        self._thread.join()
        return sum(self.seen.values())


def run_command(source: Path, out: Path, extra: list[str]) -> dict[str, Any]:
    config = out / "config.json"
    out.mkdir(parents=True)
    config.write_text(json.dumps(CONFIG))
    cmd = [sys.executable, "-m", "imaged", "batch", "--config", str(config), "--source"]
    cmd += [str(source), "--output-dir", str(out / "o"), "--manifest", str(out / "m.jsonl")]
    cmd += ["--progress", "none", *extra]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tree = TreeCPU(proc.pid)
    stdout, stderr = proc.communicate(timeout=1800)
    wall = time.monotonic() - started
    cpu = tree.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"imaged batch {extra} exited {proc.returncode}: {stderr[-2000:]}")
    records = [json.loads(line) for line in (out / "m.jsonl").read_text().splitlines()]
    return {"wall": wall, "cpu": cpu, "sources": len(records), "summary": stdout.splitlines()[-1]}


def run_server_loop(paths: list[Path], out: Path, cores: int) -> dict[str, Any]:
    import httpx

    args = ["--enable-pipeline", "--output-dir", str(out / "o"), "--max-pipeline-tasks", "4"]
    config = json.dumps(CONFIG)
    bodies = [(path.relative_to(path.parents[1]).as_posix(), path.read_bytes()) for path in paths]
    with Imaged(cores, "glibc", args) as server:
        base = f"http://127.0.0.1:{server.port}"

        def send(items: list[tuple[str, bytes]]) -> int:
            done = 0
            with httpx.Client(base_url=base, timeout=120) as client:
                for key, body in items:
                    one = config.replace("{dir}/{stem}", key.removesuffix(".jpg"))
                    files = {"file": ("source.jpg", body, "image/jpeg")}
                    response = client.put("/pipeline", data={"config": one}, files=files)
                    tasks = response.json()["tasks"]
                    done += all(t["status"] == "success" for t in tasks)
            return done

        before = cpu_seconds(server.pid)
        started = time.monotonic()
        with ThreadPoolExecutor(cores) as pool:
            ok = sum(pool.map(send, [bodies[i::cores] for i in range(cores)]))
        wall = time.monotonic() - started
        cpu = cpu_seconds(server.pid) - before
    if ok != len(paths):
        raise RuntimeError(f"PUT /pipeline: {len(paths) - ok} sources failed")
    return {"wall": wall, "cpu": cpu, "sources": len(paths), "summary": ""}


def run(count: int, cores: int, ray: bool = True) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="imaged-bench-batch-") as tmp:
        base = Path(tmp)
        paths = make_sources(base / "src", count)
        variants: list[tuple[str, Any]] = [
            ("PUT /pipeline loop", lambda out: run_server_loop(paths, out, cores)),
            (f"imaged batch, {cores} workers",
             lambda out: run_command(base / "src", out, ["--workers", str(cores)])),
        ]  # fmt: skip
        if ray:
            variants.append(
                (
                    "imaged batch --ray local",
                    lambda out: run_command(base / "src", out, ["--ray", "local"]),
                )
            )
        for i, (name, measure) in enumerate(variants):
            result = measure(base / f"out{i}")
            rows.append(
                {
                    "variant": name,
                    "sources": result["sources"],
                    "wall_s": result["wall"],
                    "images_per_s": result["sources"] / result["wall"],
                    "cpu_s_per_source": result["cpu"] / result["sources"],
                    "busy_cores": result["cpu"] / result["wall"],
                    "cores": cores,
                    "summary": result["summary"],
                }
            )
    return rows
