"""Decode once for many outputs (engine/multi.py, batch.md): every task of one shared
decode has exactly the dimensions of its own `transform` (the single path of `/transform`)
and pixels within the tolerance; the fallbacks decode separately and give the single
path's very bytes; `Engine.transform_many` keeps per-task outcomes and metrics."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from pathlib import Path

import pytest
import pyvips

from imaged.engine import multi
from imaged.engine.core import Engine
from imaged.engine.formats import Codecs, detect
from imaged.engine.options import Limits, TransformOptions, TransformResult
from imaged.engine.transform import transform
from imaged.errors import ImageError
from tests.serverproc import CORPUS
from tests.test_core import Recorder
from tests.transform_support import DECODE_ONCE_MAD, mad
from tests.waiting import await_until

LIMITS = Limits()
PNG = "png"  # lossless outputs: the difference measured is the resampling alone
# Option sets: fit modes, width only, height only, both, crop positions, blur, greyscale.
OPTION_SETS = (
    TransformOptions(format=PNG, width=1200),
    TransformOptions(format=PNG, width=640),
    TransformOptions(format=PNG, width=333),
    TransformOptions(format=PNG, width=150),
    TransformOptions(format=PNG, height=500),
    TransformOptions(format=PNG, height=97),
    TransformOptions(format=PNG, width=300, height=300, fit="cover"),
    TransformOptions(format=PNG, width=300, height=200, fit="cover", position="left top"),
    TransformOptions(format=PNG, width=250, height=400, fit="cover", position="southeast"),
    TransformOptions(format=PNG, width=300, height=300, fit="cover", position="attention"),
    TransformOptions(format=PNG, width=300, height=300, fit="cover", position="entropy"),
    TransformOptions(format=PNG, width=300, height=300, fit="contain"),
    TransformOptions(format=PNG, width=280, height=300, fit="contain", position="north"),
    TransformOptions(format=PNG, width=300, height=150, fit="fill"),
    TransformOptions(format=PNG, width=300, height=300, fit="inside"),
    TransformOptions(format=PNG, width=300, height=300, fit="outside"),
    TransformOptions(format=PNG, width=400, blur=2.5),
    TransformOptions(format=PNG, width=200, blur="box"),
    TransformOptions(format=PNG, width=350, greyscale=True),
    TransformOptions(format=PNG, width=500, kernel="linear"),
)
# Other output formats: the same dimensions (their encoders' noise is not resampling).
FORMAT_SETS = (
    TransformOptions(format="webp", width=800),
    TransformOptions(format="jpeg", width=400),
    TransformOptions(format="avif", width=240, quality=40),
    TransformOptions(format="gif", width=120),
    TransformOptions(format="tiff", width=300, height=100),
)
ORIENTATION = sorted((CORPUS / "orientation").glob("*.jpg"))
STILLS = [
    CORPUS / name
    for name in (
        "jpeg-12mp-olympus-ep3.jpg",
        "jpeg-12mp-xiaomi-mi9t-orient6.jpg",
        "jpeg-3mp-canon-sx60-orient6.jpg",
        "jpeg-8mp-iphone6-gps.jpg",
        "jpeg-adobergb-icc-sample.jpg",
        "jpeg-cmyk-swop-canon300d.jpg",
        "jpeg-small-nikon-p6000-gps.jpg",
        "png-rgba-2048x1536.png",
        "png-palette-8bit.png",
        "png-rgb16.png",
        "tiff-rgb16-adobergb-fujixt2.tiff",
        "webp-alpha.webp",
        "webp-lossy-photo.webp",
        "svg-libvips-logo.svg",
    )
]


@functools.cache
def grey_jpeg() -> bytes:
    """A greyscale (one-component) JPEG made from a corpus photo."""
    photo = pyvips.Image.new_from_file(str(CORPUS / "jpeg-8mp-iphone6-gps.jpg"))
    data: bytes = photo.colourspace("b-w").jpegsave_buffer(Q=90)
    return data


def run_both(
    data: bytes, options: Sequence[TransformOptions], shared_limit: int = multi.SHARED_DECODE_LIMIT
) -> tuple[list[TransformResult], list[TransformResult], multi.Results]:
    fmt = detect(data)
    assert fmt is not None
    singles = [transform(data, fmt, o, LIMITS) for o in options]
    results = multi.transform_many(data, fmt, options, LIMITS, shared_limit=shared_limit)
    outputs = []
    for outcome in results.outcomes:
        assert isinstance(outcome, TransformResult), outcome
        outputs.append(outcome)
    return singles, outputs, results


def assert_like_single(
    singles: list[TransformResult], outputs: list[TransformResult], pixels: bool = True
) -> None:
    for single, output in zip(singles, outputs, strict=True):
        assert (output.width, output.height, output.format) == (
            single.width,
            single.height,
            single.format,
        )
        image = pyvips.Image.new_from_buffer(output.data, "")
        assert (image.width, image.height) == (single.width, single.height)
        if pixels:
            assert mad(output.data, single.data) <= DECODE_ONCE_MAD


@pytest.mark.parametrize("path", STILLS + ORIENTATION, ids=lambda p: p.name)
def test_shared_decode_matches_the_single_path(path: Path) -> None:
    data = path.read_bytes()
    singles, outputs, results = run_both(data, OPTION_SETS)
    assert_like_single(singles, outputs)
    # The greyscale task needs the full-size decode; everything else derives from it.
    assert sum(results.shared) >= len(OPTION_SETS) // 2, results.shared


def test_greyscale_jpeg() -> None:
    singles, outputs, results = run_both(grey_jpeg(), OPTION_SETS)
    assert_like_single(singles, outputs)
    assert all(results.shared)


@pytest.mark.parametrize(
    "name", ["jpeg-12mp-olympus-ep3.jpg", "png-rgba-2048x1536.png", "Landscape_6.jpg"]
)
def test_other_output_formats_have_the_single_dimensions(name: str) -> None:
    path = CORPUS / name if (CORPUS / name).exists() else CORPUS / "orientation" / name
    singles, outputs, results = run_both(path.read_bytes(), FORMAT_SETS)
    assert_like_single(singles, outputs, pixels=False)
    assert sum(results.shared) >= 4


def test_four_webp_widths_share_one_decode_at_the_largest_size() -> None:
    """The benchmark's config: all four from one decode; the 1600 px one (the largest
    decode, JPEG shrink 2) has exactly the single path's pixels."""
    data = (CORPUS / "jpeg-12mp-olympus-ep3.jpg").read_bytes()
    options = [TransformOptions(format=PNG, width=w) for w in (1600, 800, 400, 200)]
    singles, outputs, results = run_both(data, options)
    assert_like_single(singles, outputs)
    assert results.shared == [True] * 4
    assert outputs[0].data == singles[0].data


def test_above_the_memory_threshold_tasks_decode_separately() -> None:
    data = (CORPUS / "jpeg-3mp-canon-sx60-orient6.jpg").read_bytes()
    # Orientation 6: `width` is the stored height, 1536 px; the largest decode is shrink 2.
    options = [TransformOptions(format=PNG, width=w) for w in (350, 300, 200)]
    # 2048×1536 RGB at shrink 2 is 1024×768×3 bytes: one byte less than that is too much.
    singles, outputs, results = run_both(data, options, shared_limit=1024 * 768 * 3 - 1)
    assert results.shared == [False] * 3
    assert [o.data for o in outputs] == [s.data for s in singles]
    _, _, results = run_both(data, options, shared_limit=1024 * 768 * 3)
    assert results.shared == [True] * 3


def test_the_default_threshold_is_256_mib() -> None:
    assert multi.SHARED_DECODE_LIMIT == 256 * 1024 * 1024


def test_webp_shares_only_the_same_load_scale() -> None:
    """WebP scales on load with its own resampler: tasks at other scales decode alone."""
    data = (CORPUS / "webp-lossy-photo.webp").read_bytes()
    options = [
        TransformOptions(format=PNG, width=300),
        TransformOptions(format=PNG, width=300, quality=50),
        TransformOptions(format=PNG, width=120),
        TransformOptions(format=PNG),
        TransformOptions(format=PNG, greyscale=True),
    ]
    singles, outputs, results = run_both(data, options)
    assert results.shared == [True, True, False, True, True]
    assert [o.data for o in outputs] == [s.data for s in singles]


def test_small_jpeg_decodes_stay_separate() -> None:
    data = (CORPUS / "jpeg-small-nikon-p6000-gps.jpg").read_bytes()  # 640×480
    options = [
        TransformOptions(format=PNG),  # the full-size decode
        TransformOptions(format=PNG, width=600),  # shrink 1: the same decode
        TransformOptions(format=PNG, width=100),  # 1/4: 160×120 decodes alone
    ]
    singles, outputs, results = run_both(data, options)
    assert results.shared == [True, True, False]
    assert [o.data for o in outputs] == [s.data for s in singles]


def test_animated_tasks_decode_separately() -> None:
    data = (CORPUS / "gif-animated-10f.gif").read_bytes()
    options = [
        TransformOptions(format="webp", width=100, animated=True),
        TransformOptions(format=PNG, width=100),
        TransformOptions(format=PNG, width=50),
        TransformOptions(format="gif", width=80, animated=True),
    ]
    singles, outputs, results = run_both(data, options)
    assert results.shared == [False, True, True, False]
    assert [o.frames for o in outputs] == [s.frames for s in singles]
    assert outputs[0].frames > 1
    assert [o.data for o in outputs] == [s.data for s in singles]


def test_one_failing_task_fails_alone() -> None:
    data = (CORPUS / "jpeg-12mp-olympus-ep3.jpg").read_bytes()
    options = [
        TransformOptions(format="webp", width=400),
        TransformOptions(format="webp", width=20000, height=10, fit="contain"),  # > 16383
        TransformOptions(format=PNG, width=300),
    ]
    results = multi.transform_many(data, "jpeg", options, LIMITS)
    failed = results.outcomes[1]
    assert isinstance(failed, ImageError)
    with pytest.raises(ImageError) as single:
        transform(data, "jpeg", options[1], LIMITS)
    assert failed.message == single.value.message
    assert all(isinstance(o, TransformResult) for o in (results.outcomes[0], results.outcomes[2]))
    assert results.shared == [True, True, True]


def test_an_undecodable_source_fails_every_task_like_the_single_path() -> None:
    data = (CORPUS / "jpeg-3mp-canon-sx60-orient6.jpg").read_bytes()[:20000]  # truncated
    options = [TransformOptions(format=PNG, width=w) for w in (500, 100)]
    results = multi.transform_many(data, "jpeg", options, LIMITS)
    for outcome, task in zip(results.outcomes, options, strict=True):
        assert isinstance(outcome, ImageError)
        with pytest.raises(ImageError) as single:
            transform(data, "jpeg", task, LIMITS)
        assert outcome.message == single.value.message
    assert results.shared == [False, False]


CODECS = Codecs(decoders=("jpeg", "png"), encoders=("png", "webp"))


async def test_engine_observes_one_transform_per_task() -> None:
    seen = Recorder()
    engine = Engine(LIMITS, concurrency=1, queue_limit=4, codecs=CODECS, observer=seen)
    data = (CORPUS / "jpeg-3mp-canon-sx60-orient6.jpg").read_bytes()
    options = [
        TransformOptions(format="webp", width=400),
        TransformOptions(format="avif", width=200),  # no encoder in CODECS
        TransformOptions(format=PNG, width=100),
    ]
    try:
        outcomes = await engine.transform_many(data, options, bounded=False)
        unknown = await engine.transform_many(b"not an image", options[:1])
    finally:
        engine.close()
    assert isinstance(outcomes[0], TransformResult) and isinstance(outcomes[2], TransformResult)
    assert isinstance(outcomes[1], ImageError) and "avif" in outcomes[1].message
    assert isinstance(unknown[0], ImageError)
    assert [entry[:3] for entry in seen.done] == [
        ("transform", "webp", True),
        ("transform", "avif", False),
        ("transform", PNG, True),
        ("transform", "webp", False),
    ]
    held = [entry[3] for entry in seen.done]
    assert held[0] is not None and held[0] > 0 and held[2] is not None and held[2] > 0
    assert held[1] is None and held[3] is None  # never ran


async def test_engine_time_limit_fails_the_unfinished_tasks() -> None:
    engine = Engine(LIMITS, concurrency=1, queue_limit=4, codecs=CODECS, operation_timeout=0.5)
    data = (CORPUS / "jpeg-12mp-olympus-ep3.jpg").read_bytes()
    options = [
        TransformOptions(format=PNG, width=50),
        TransformOptions(format=PNG, blur=900.0),  # minutes of blur at full size
        TransformOptions(format=PNG, blur=900.0),
    ]
    try:
        outcomes = await asyncio.wait_for(engine.transform_many(data, options), 60)
    finally:
        engine.close()
    assert isinstance(outcomes[0], TransformResult)
    for outcome in outcomes[1:]:
        assert isinstance(outcome, ImageError)
        assert outcome.message == "image: processing time limit of 0.5 s exceeded"


async def test_engine_cancellation_reports_every_task_failed() -> None:
    seen = Recorder()
    engine = Engine(LIMITS, concurrency=1, queue_limit=4, codecs=CODECS, observer=seen)
    data = (CORPUS / "jpeg-12mp-olympus-ep3.jpg").read_bytes()
    options = [TransformOptions(format=PNG, blur=900.0), TransformOptions(format="webp")]
    try:
        running = asyncio.create_task(engine.transform_many(data, options))
        await await_until(lambda: engine.limiter.in_use == 1, "the operation's permit")
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    finally:
        engine.close()
    assert [entry[:3] for entry in seen.done] == [
        ("transform", PNG, False),
        ("transform", "webp", False),
    ]
    assert engine.limiter.in_use == 0


def _costs(data: bytes, options: Sequence[TransformOptions]) -> list[int]:
    from imaged.engine import budget

    return [budget.transform_cost(data, "jpeg", o, LIMITS) for o in options]


async def _with_budget(
    budget_bytes: int, data: bytes, options: Sequence[TransformOptions]
) -> tuple[list[TransformResult | Exception], list[int]]:
    """The outcomes and the cost of every reservation the limiter was asked for."""
    engine = Engine(LIMITS, concurrency=2, queue_limit=4, codecs=CODECS, memory_budget=budget_bytes)
    asked: list[int] = []
    acquire = engine.limiter.acquire

    async def recording(bounded: bool = True, cost: int = 0, held: int = 0) -> None:
        asked.append(cost)
        await acquire(bounded, cost, held)

    engine.limiter.acquire = recording  # type: ignore[method-assign]
    try:
        return await engine.transform_many(data, options, bounded=False), asked
    finally:
        engine.close()


OLYMPUS = CORPUS / "jpeg-12mp-olympus-ep3.jpg"
BIG_AND_SMALL = [TransformOptions(format=PNG), TransformOptions(format=PNG, width=200)]


async def test_budget_one_reservation_for_the_shared_decode() -> None:
    """With a memory budget the shared operation reserves twice its largest task's
    estimate (at most the sum): the shared decode is no larger than that task's own."""
    data = OLYMPUS.read_bytes()
    each = _costs(data, BIG_AND_SMALL)
    outcomes, asked = await _with_budget(sum(each) * 4, data, BIG_AND_SMALL)
    assert all(isinstance(o, TransformResult) for o in outcomes), outcomes
    assert asked == [min(sum(each), 2 * max(each))]


async def test_budget_tasks_that_do_not_fit_together_run_alone() -> None:
    """Each task fits the budget but not the shared reservation: every task runs alone
    with its own estimate; a task over the whole budget fails alone with the 400 text."""
    data = OLYMPUS.read_bytes()
    big, small = _costs(data, BIG_AND_SMALL)
    outcomes, asked = await _with_budget(big, data, BIG_AND_SMALL)
    assert all(isinstance(o, TransformResult) for o in outcomes), outcomes
    assert sorted(asked) == sorted([big, small])
    outcomes, _ = await _with_budget((big + small) // 2, data, BIG_AND_SMALL)
    assert isinstance(outcomes[0], ImageError)
    assert outcomes[0].message == "image: Input image needs more memory than the server allows"
    assert isinstance(outcomes[1], TransformResult) and outcomes[1].width == 200
