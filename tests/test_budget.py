"""The memory estimate (engine/budget.py) against measured peaks, and the engine's reservations.

For every corpus image and workload (resources.md: transform to 400 px, full-size convert,
metadata with stats) the estimate must be at least the measured extra peak of that operation
and at most 3× it. The peak is measured in a fresh process per operation (tests/memprobe.py):
libvips' tracked high-water mark plus the Python peak (the libjpeg-turbo decode, the output).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from imaged.engine import budget, formats
from imaged.engine.core import Engine
from imaged.engine.limiter import MEMORY_EXCEEDED
from imaged.engine.load import load_checked, orientation
from imaged.engine.options import Limits, MetadataOptions, TransformOptions
from imaged.errors import ImageError
from tests.memprobe import WORKLOADS, Measured, measure_all
from tests.serverproc import CORPUS

CORPUS_FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".md")
# The one corpus image this libvips cannot decode (no HEVC decoder in libheif's build).
UNDECODABLE = {"heic-iphone11-displayp3-gps.heic"}


@pytest.fixture(scope="session")
def measured() -> list[Measured]:
    jobs = [(str(path), workload) for path in CORPUS_FILES for workload in WORKLOADS]
    return list(measure_all(jobs))


def _estimate(path: Path, workload: str) -> budget.Estimate:
    data = path.read_bytes()
    fmt = formats.detect(data) or "unknown"
    image = load_checked(data, fmt, Limits())
    header = budget.Header.of(image, fmt, orientation(image))
    options = WORKLOADS[workload]
    if isinstance(options, TransformOptions):
        return budget.transform(header, options, data)
    return budget.metadata(header, options, data)


def test_estimate_bounds_the_measured_peak(measured: list[Measured]) -> None:
    failed = {Path(m.path).name for m in measured if m.error}
    assert failed == UNDECODABLE
    checked = 0
    report = []
    for m in measured:
        if m.error:
            continue
        estimate = _estimate(Path(m.path), m.workload).total
        ratio = estimate / m.peak
        report.append(f"{Path(m.path).name} {m.workload}: {m.peak} → {estimate} ({ratio:.2f}×)")
        if not 1 <= ratio <= 3:
            pytest.fail("\n".join(report))
        checked += 1
    assert checked == (len(CORPUS_FILES) - len(UNDECODABLE)) * len(WORKLOADS)


def test_estimate_terms() -> None:
    """Frames multiply, smart crops and rotations add an output-sized copy, header-only
    metadata costs nothing beyond the constant."""
    header = budget.Header("png", 1000, 500, 4, 1, 10, 0, alpha=True)
    still = budget.transform(header, TransformOptions(format="webp", width=100))
    moving = budget.transform(header, TransformOptions(format="webp", width=100, animated=True))
    assert moving.decoded == 10 * still.decoded == 10 * 1000 * 500 * 4
    assert moving.output == 10 * still.output == 10 * 100 * 50 * 4
    assert still.copies == 0 and moving.copies == moving.output
    smart = budget.transform(header, TransformOptions(width=100, height=100, position="entropy"))
    assert smart.copies == smart.output == 200 * 100 * 4  # materialised before the crop
    rotated = budget.Header("png", 1000, 500, 3, 2, 1, 6)
    turned = budget.transform(rotated, TransformOptions(format="png"))
    assert (turned.decoded, turned.output, turned.copies) == (3_000_000, 1_500_000, 1_500_000)
    padded = budget.transform(rotated, TransformOptions(width=2000, height=2000, fit="contain"))
    assert padded.output == 2000 * 2000 * 3
    assert budget.metadata(header, MetadataOptions(exif=True)).total == budget.BASE
    assert budget.metadata(header, MetadataOptions(stats=True)).decoded == 2_000_000


def test_jpeg_estimate_uses_shrink_on_load() -> None:
    data = (CORPUS / "jpeg-12mp-olympus-ep3.jpg").read_bytes()
    image = load_checked(data, "jpeg", Limits())
    header = budget.Header.of(image, "jpeg", 0)
    small = budget.transform(header, TransformOptions(width=400), data)
    full = budget.transform(header, TransformOptions(), data)
    assert small.decoded == 504 * 378 * 3  # libjpeg's 1/8 scale of 4032×3024
    assert full.decoded == 4032 * 3024 * 3


def test_costs_include_the_input_and_check_like_the_operation() -> None:
    data = (CORPUS / "png-rgba-2048x1536.png").read_bytes()
    options = TransformOptions(width=400)
    cost = budget.transform_cost(data, "png", options, Limits())
    assert cost == _estimate(CORPUS / "png-rgba-2048x1536.png", "400px").total + len(data)
    assert budget.metadata_cost(data, "png", MetadataOptions(), Limits()) == (
        budget.BASE + len(data)
    )
    with pytest.raises(ImageError, match="Input image exceeds pixel limit"):
        budget.transform_cost(data, "png", options, Limits(pixel_limit=1000))


def _engine(memory_budget: int, concurrency: int = 2) -> Engine:
    return Engine(Limits(), concurrency, 64, memory_budget=memory_budget)


async def test_engine_refuses_an_operation_over_the_budget() -> None:
    data = (CORPUS / "jpeg-12mp-olympus-ep3.jpg").read_bytes()
    engine = _engine(64 << 20)  # a full-size convert needs ≈ 84 MB, stats 55, 400 px 6
    try:
        with pytest.raises(ImageError) as caught:
            await engine.transform(data, TransformOptions(format="tiff"))
        assert str(caught.value) == f"image: {MEMORY_EXCEEDED}"
        result = await engine.transform(data, TransformOptions(width=400))
        assert result.width == 400
        stats = await engine.metadata(data, MetadataOptions(stats=True))
        assert "stats" in stats.fields
        assert engine.limiter.reserved == 0 and engine.limiter.in_use == 0
    finally:
        engine.close()


async def test_engine_operations_wait_for_memory() -> None:
    """Two operations that together exceed the budget run one after the other."""
    data = (CORPUS / "png-rgba-2048x1536.png").read_bytes()
    cost = budget.transform_cost(data, "png", TransformOptions(format="tiff"), Limits())
    engine = _engine(cost + cost // 2, concurrency=4)
    try:
        results = await asyncio.gather(
            *[engine.transform(data, TransformOptions(format="tiff")) for _ in range(3)]
        )
        assert [r.width for r in results] == [2048] * 3
        assert engine.limiter.memory_waits >= 1
        assert engine.limiter.reserved == 0
    finally:
        engine.close()
