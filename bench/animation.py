"""The animated workload (`--sections animation`, issue 16): whole animations through
imaged with `animated=true`, CPU per request and peak memory.

| key | input | operation |
|---|---|---|
| A1 | corpus `gif-animated-10f.gif` (370×285, 10 frames) | width 200, WebP |
| A2 | same | width 200, GIF |
| A3 | synthetic 100-frame GIF (480×270, a square moving over a gradient) | width 200, WebP |
| A4 | same | width 200, GIF |
| M1 | synthetic 200-frame 1000×1000 GIF, `--pixel-limit 300000000` | width 200, WebP |

M1 is animation.md's memory bound: at most +150 MiB peak RSS (all frames decoded at once
would be 763 MiB). Every case runs on a fresh server: one small animated request warms the
code paths, the idle RSS is read, then `requests` requests one at a time, so the peak above
idle is what one request needs. The synthetic inputs are made once per run in a temporary
directory (M1's takes ~20 s to encode).
"""

from __future__ import annotations

import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from bench import loadgen
from bench.procstat import Window, rss_mib, wait_idle
from bench.servers import Imaged
from bench.workloads import CORPUS

MEMORY_BOUND_MIB = 150


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    input: str  # a corpus file, or the name of a synthetic input (SYNTHETIC)
    query: str
    args: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return f"/transform?animated=true&{self.query}"


# name → (frames, width, height)
SYNTHETIC = {"synthetic-100f.gif": (100, 480, 270), "synthetic-200f-1000px.gif": (200, 1000, 1000)}
CASES = (
    Case("A1", "10-frame GIF → 200 WebP", "gif-animated-10f.gif", "width=200&format=webp"),
    Case("A2", "10-frame GIF → 200 GIF", "gif-animated-10f.gif", "width=200&format=gif"),
    Case("A3", "100-frame GIF → 200 WebP", "synthetic-100f.gif", "width=200&format=webp"),
    Case("A4", "100-frame GIF → 200 GIF", "synthetic-100f.gif", "width=200&format=gif"),
    Case("M1", "200 × 1000² GIF → 200 WebP", "synthetic-200f-1000px.gif",
         "width=200&format=webp", ("--pixel-limit", "300000000")),
)  # fmt: skip
WARM_UP = "/transform?animated=true&width=50&format=webp"


def synthetic(path: Path, frames: int, width: int, height: int) -> Path:
    """An animated GIF: a gradient with a square that moves and changes colour each frame."""
    if path.exists():
        return path
    xyz = pyvips.Image.xyz(width, height)
    background = (xyz[0] * 255 / width).bandjoin([xyz[1] * 255 / height, 90]).cast("uchar")
    background = background.copy(interpretation="srgb").copy_memory()
    side = min(width, height) // 5
    pages = []
    for index in range(frames):
        colour = [255, index * 7 % 256, 255 - index * 3 % 256]
        square = pyvips.Image.black(side, side).new_from_image(colour).cast("uchar")
        left, top = index * 37 % (width - side), index * 53 % (height - side)
        pages.append(background.insert(square, left, top))
    strip = pyvips.Image.arrayjoin(pages, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [40] * frames)
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    strip.gifsave(str(path), effort=1)
    return path


def inputs(directory: Path) -> dict[str, Path]:
    found = {c.input: CORPUS / c.input for c in CASES if c.input not in SYNTHETIC}
    for name, (frames, width, height) in SYNTHETIC.items():
        found[name] = synthetic(directory / name, frames, width, height)
    return found


def _answer(url: str, body: Path) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body.read_bytes(), method="PUT")
    with urllib.request.urlopen(request, timeout=600) as response:
        data = response.read()
        headers = response.headers
    return {
        "out_bytes": len(data),
        "width": int(headers["X-Image-Width"]),
        "height": int(headers["X-Image-Height"]),
        "frames": int(headers.get("X-Image-Frames", "1")),
    }


def measure(
    tool: str, allocator: str, concurrency: int, case: Case, body: Path, requests: int
) -> dict[str, Any]:
    with Imaged(concurrency, allocator, case.args) as server:
        _answer(server.url + WARM_UP, CORPUS / "gif-animated-10f.gif")
        wait_idle(server.pid)
        idle = rss_mib(server.pid)
        load = loadgen.Load("PUT", server.url + case.target, body)
        with Window(server.pid) as window:
            result = loadgen.run(tool, load, 1, 3600, requests)
        row: dict[str, Any] = {
            "key": case.key,
            "title": case.title,
            "input_bytes": body.stat().st_size,
            "requests": result.requests,
            "errors": result.errors,
            "p50_ms": result.p50_ms,
            "cpu_ms": window.cpu / result.requests * 1000 if result.requests else None,
            "idle_rss_mb": idle,
            "peak_rss_mb": window.peak,
            "above_idle_mb": window.peak - idle,
        }
        row.update(_answer(server.url + case.target, body))
        return row


def run(tool: str, allocator: str, concurrency: int, requests: int) -> list[dict[str, Any]]:
    """Every case on its own fresh server; M1 also says whether the memory bound holds."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-animation-") as tmp:
        found = inputs(Path(tmp))
        for case in CASES:
            row = measure(tool, allocator, concurrency, case, found[case.input], requests)
            if case.key == "M1":
                row["bound_mb"] = MEMORY_BOUND_MIB
                row["met"] = row["above_idle_mb"] <= MEMORY_BOUND_MIB
            rows.append(row)
    return rows
