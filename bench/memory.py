"""Memory and scaling studies: soak peak RSS, RSS drift, 48 MP vs 12 MP, --concurrency curve.

Every study starts a fresh imaged so earlier work does not inflate its numbers.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from bench import loadgen
from bench.procstat import Window, rss_mib, wait_idle
from bench.servers import Imaged
from bench.workloads import BY_KEY, Workload

BIG_BODY_LIMIT = 128 * 1024 * 1024


@dataclass(frozen=True)
class Plan:
    """Sizes of the memory studies (the issue's targets by default; `--quick` shrinks them)."""

    soak_seconds: float = 60.0
    soak_concurrency: int = 8
    drift_first: int = 200
    drift_total: int = 2000
    big_requests: int = 6
    scaling_levels: tuple[int, ...] = (1, 2, 4)
    scaling_seconds: float = 10.0
    scaling_connections: int = 8


def _load(server: Imaged, workload: Workload, body: Path | None = None) -> loadgen.Load:
    return loadgen.Load("PUT", server.url + workload.imaged_target, body or workload.path)


def soak(tool: str, allocator: str, concurrency: int, plan: Plan) -> dict[str, Any]:
    """W1 at `soak_concurrency` connections for `soak_seconds`: peak RSS (target ≤ 200 MB)."""
    w1 = BY_KEY["W1"]
    with Imaged(concurrency, allocator) as server:
        idle = rss_mib(server.pid)
        with Window(server.pid) as window:
            result = loadgen.run(tool, _load(server, w1), plan.soak_concurrency, plan.soak_seconds)
        return {
            "idle_rss_mb": idle,
            "peak_rss_mb": window.peak,
            "end_rss_mb": window.rss_end,
            "requests": result.requests,
            "errors": result.errors,
            "rps": result.rps,
            "cpu_ms": window.cpu / result.requests * 1000 if result.requests else None,
        }


def drift(tool: str, allocator: str, concurrency: int, plan: Plan) -> dict[str, Any]:
    """RSS after the first `drift_first` W1 requests and after `drift_total` (target ≤ 1.1×)."""
    w1 = BY_KEY["W1"]
    cap = 3600.0
    with Imaged(concurrency, allocator) as server:
        load = _load(server, w1)
        first = loadgen.run(tool, load, plan.soak_concurrency, cap, plan.drift_first)
        wait_idle(server.pid)
        rss_first = rss_mib(server.pid)
        rest = loadgen.run(
            tool, load, plan.soak_concurrency, cap, plan.drift_total - first.requests
        )
        wait_idle(server.pid)
        rss_total = rss_mib(server.pid)
        return {
            "requests_first": first.requests,
            "requests_total": first.requests + rest.requests,
            "errors": first.errors + rest.errors,
            "rss_first_mb": rss_first,
            "rss_total_mb": rss_total,
            "ratio": rss_total / rss_first if rss_first else None,
        }


def make_big_jpeg(directory: Path) -> Path:
    """A 48 MP camera-like JPEG (8064×6048): 2×2 mirrored tiles of the 12 MP W1 photo, so
    it carries real photo detail (an upscale would be smoother and decode faster)."""
    path = directory / "jpeg-48mp-olympus-2x2.jpg"
    if not path.exists():
        image = pyvips.Image.new_from_file(str(BY_KEY["W1"].path)).copy_memory()
        tiles = [image, image.fliphor(), image.flipver(), image.rot180()]
        pyvips.Image.arrayjoin(tiles, across=2).jpegsave(str(path), Q=92)
    return path


def big_vs_small(
    tool: str, allocator: str, concurrency: int, plan: Plan, big: Path
) -> dict[str, Any]:
    """Peak RSS of 400 px WebP from the 12 MP and the 48 MP JPEG (target ≤ 2×), one at a time."""
    w1 = BY_KEY["W1"]
    out: dict[str, Any] = {}
    for label, body in (("12mp", w1.path), ("48mp", big)):
        args = ("--body-limit", str(BIG_BODY_LIMIT))
        with Imaged(concurrency, allocator, args) as server:
            idle = rss_mib(server.pid)
            with Window(server.pid) as window:
                result = loadgen.run(tool, _load(server, w1, body), 1, 3600, plan.big_requests)
            out[label] = {
                "idle_rss_mb": idle,
                "peak_rss_mb": window.peak,
                "requests": result.requests,
                "errors": result.errors,
                "cpu_ms": window.cpu / result.requests * 1000 if result.requests else None,
            }
    small, large = out["12mp"]["peak_rss_mb"], out["48mp"]["peak_rss_mb"]
    out["ratio"] = large / small if small else None
    grow_small = small - out["12mp"]["idle_rss_mb"]
    grow_large = large - out["48mp"]["idle_rss_mb"]
    out["ratio_above_idle"] = grow_large / grow_small if grow_small > 0 else None
    out["big_bytes"] = big.stat().st_size
    return out


def scaling(tool: str, allocator: str, workload: Workload, plan: Plan) -> list[dict[str, Any]]:
    """Throughput for each `--concurrency`, with enough connections to keep every permit busy."""
    rows: list[dict[str, Any]] = []
    for level in plan.scaling_levels:
        with Imaged(level, allocator) as server:
            load = _load(server, workload)
            loadgen.run(tool, load, level, 3600, max(2, level))  # warm-up
            wait_idle(server.pid)
            with Window(server.pid) as window:
                result = loadgen.run(tool, load, plan.scaling_connections, plan.scaling_seconds)
            rows.append(
                {
                    "server_concurrency": level,
                    "connections": plan.scaling_connections,
                    "rps": result.rps,
                    "p50_ms": result.p50_ms,
                    "p99_ms": result.p99_ms,
                    "errors": result.errors,
                    "cpu_ms": window.cpu / result.requests * 1000 if result.requests else None,
                    "cpu_util": window.cpu / result.duration if result.duration else None,
                    "peak_rss_mb": window.peak,
                }
            )
    return rows


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="bench-big-")
