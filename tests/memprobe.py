"""Measured extra memory peak of one engine operation, each in a fresh process.

libvips' tracked high-water mark (`vips_tracked_get_mem_highwater`) cannot be reset, so each
measurement runs in its own child, forked from a forkserver that has imported the engine but
run no operation (its high-water mark is 0). The peak is libvips' tracked high-water mark plus
the Python peak (tracemalloc: the libjpeg-turbo decode, a numpy array, and the encoded output).
"""

from __future__ import annotations

import multiprocessing
import tracemalloc
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from imaged.engine.options import Limits, MetadataOptions, TransformOptions

# The workloads of resources.md's estimator test.
WORKLOADS: dict[str, TransformOptions | MetadataOptions] = {
    "400px": TransformOptions(format="jpeg", width=400),
    "convert": TransformOptions(format="tiff"),
    "stats": MetadataOptions(stats=True),
}


@dataclass(frozen=True)
class Measured:
    path: str
    workload: str
    vips: int  # libvips' tracked high-water mark
    python: int  # tracemalloc's peak
    error: str | None

    @property
    def peak(self) -> int:
        return self.vips + self.python


def measure(path: str, workload: str) -> Measured:
    """In the child: run one operation and report its peaks."""
    import pyvips

    from imaged.engine import formats, metadata, transform, vips

    vips.configure()
    pyvips.cache_set_max(0)  # the operation cache would keep buffers beyond the operation
    assert vips.tracking_available()
    data = Path(path).read_bytes()
    fmt = formats.detect(data) or "unknown"
    before = vips.tracked_memory_highwater()
    if before:
        raise RuntimeError(f"high-water mark already {before}")
    options = WORKLOADS[workload]
    tracemalloc.start()
    error = None
    try:
        if isinstance(options, TransformOptions):
            transform.transform(data, fmt, options, Limits())
        else:
            metadata.extract(data, fmt, options, Limits())
    except Exception as exc:  # a failing input is reported, not raised
        error = str(exc)
    python = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return Measured(path, workload, vips.tracked_memory_highwater(), python, error)


def measure_all(jobs: Iterable[tuple[str, str]], workers: int = 2) -> Iterator[Measured]:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pyvips", "imaged.engine.transform", "imaged.engine.metadata"])
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = [pool.submit(measure, path, workload) for path, workload in jobs]
        for future in futures:
            yield future.result()
