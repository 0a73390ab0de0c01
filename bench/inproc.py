"""The in-process peer: the same operations with plain pyvips calls, no HTTP.

Run as a child process (`python -m bench.inproc W1 --concurrency 2 --duration 5`) so its CPU
time and memory are its own; prints one JSON object. Settings match imaged's (operation
cache off, one libvips thread per operation unless VIPS_CONCURRENCY is set); the encoders
run with libvips' defaults plus the workload's quality: "the plain libvips path".
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyvips

from bench.loadgen import percentile
from bench.procstat import peak_mib, reset_peak
from bench.workloads import BY_KEY, Workload

Op = Callable[[], tuple[int, int | None, int | None]]  # → output bytes (0: none), width, height
SUFFIX = {"webp": ".webp", "jpeg": ".jpg", "png": ".png", "avif": ".avif"}
UNBOUNDED = 10_000_000  # libvips' largest coordinate


def configure() -> None:
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    pyvips.cache_set_max_files(0)
    if "VIPS_CONCURRENCY" not in os.environ:
        pyvips.vips_lib.vips_concurrency_set(1)


def _save_options(workload: Workload) -> dict[str, object]:
    options: dict[str, object] = {"keep": "none"}
    if workload.quality is not None:
        options["Q"] = workload.quality
    return options


def _thumbnail(workload: Workload, data: bytes) -> tuple[bytes, pyvips.Image]:
    assert workload.width is not None and workload.fmt is not None
    image = pyvips.Image.thumbnail_buffer(data, workload.width, height=UNBOUNDED)
    return image.write_to_buffer(SUFFIX[workload.fmt], **_save_options(workload)), image


def thumbnail_op(workload: Workload, data: bytes) -> Op:
    """`thumbnail_buffer` (shrink-on-load, auto-rotate, CMYK → sRGB) + save, metadata
    stripped like imaged's output. The huge `height` makes `width` the only constraint
    (thumbnail's default height is the width: a portrait would fit a square)."""

    def op() -> tuple[int, int | None, int | None]:
        out, image = _thumbnail(workload, data)
        return len(out), image.width, image.height

    return op


def thumbnail_output(workload: Workload, data: bytes) -> bytes:
    """What `thumbnail_op` encodes, once (for the quality column)."""
    return bytes(_thumbnail(workload, data)[0])


def decode_op(data: bytes) -> Op:
    """One plain full decode (sequential; `avg` pulls every pixel): W5's reference cost."""

    def op() -> tuple[int, int | None, int | None]:
        image = pyvips.Image.new_from_buffer(data, "", access="sequential")
        image.avg()
        return 0, image.width, image.height

    return op


def metadata_op(data: bytes) -> Op:
    """W5 done plainly: one full decode into memory, then stats, a ≤100 px RGBA thumbnail
    (what ThumbHash encodes) and the EXIF blob parsed with exifread — the work imaged does
    for exif+stats+thumbhash, decoding once."""
    import exifread

    def op() -> tuple[int, int | None, int | None]:
        image = pyvips.Image.new_from_buffer(data, "").copy_memory()
        image.stats().write_to_memory()
        small = image.thumbnail_image(100)
        if not small.hasalpha():
            small = small.bandjoin(255)
        small.write_to_memory()
        if image.get_typeof("exif-data"):
            blob = image.get("exif-data")
            with contextlib.suppress(Exception):
                exifread.process_file(io.BytesIO(blob[6:]), details=False)
        return 0, image.width, image.height

    return op


def make_op(workload: Workload, variant: str, data: bytes) -> Op:
    if workload.kind == "metadata":
        return decode_op(data) if variant == "decode" else metadata_op(data)
    return thumbnail_op(workload, data)


def cpu_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(op: Op, concurrency: int, duration: float, max_ops: int) -> dict[str, object]:
    """Run `op` in `concurrency` threads for `duration` s (or `max_ops` ops)."""
    size, width, height = op()  # warm-up: codec initialisation, first-call costs
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    issued = [0]
    deadline = time.monotonic() + duration

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                if max_ops and issued[0] >= max_ops:
                    return
                issued[0] += 1
            started = time.perf_counter()
            try:
                op()
                ok = True
            except pyvips.Error:
                ok = False
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors[0] += 0 if ok else 1

    reset = reset_peak(os.getpid())
    cpu0, wall0 = cpu_time(), time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.monotonic() - wall0, cpu_time() - cpu0
    ordered = sorted(latencies)
    n = len(ordered)
    return {
        "requests": n,
        "errors": errors[0],
        "duration": wall,
        "rps": n / wall if wall > 0 else 0.0,
        "p50_ms": percentile(ordered, 50) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "cpu_ms": cpu / n * 1000 if n else 0.0,
        "peak_rss_mb": peak_mib(os.getpid()) if reset else None,
        "out_bytes": size or None,
        "width": width,
        "height": height,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload")
    parser.add_argument("--variant", default="plain", choices=("plain", "decode"))
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--max-ops", type=int, default=0)
    args = parser.parse_args(argv)
    configure()
    workload = BY_KEY[args.workload]
    op = make_op(workload, args.variant, workload.path.read_bytes())
    print(json.dumps(measure(op, args.concurrency, args.duration, args.max_ops)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
