"""Decode once for many outputs (batch.md, "Decode once for many outputs"): the tasks of one
`/pipeline` request (or one `imaged batch` source) share one decode of their source.

The source is decoded once, into memory, at the largest size any task needs: the smallest
shrink-on-load of the tasks (engine/transform.py `load_shrink`, which accounts for the EXIF
orientation, greyscale and plain re-encodes), through the same decoder as a single
transform (the libjpeg-turbo fast path of engine/jpegturbo.py where it applies). Every task
then runs the single transform's own steps after the decode (`process`: colour to sRGB,
greyscale, resize, orientation, crop/embed, blur, 8-bit sRGB) and its encode on
that image — there is no second copy of the geometry.

Exact dimensions: each task starts from an image of the size its own decode would have
(read from a lazy header load at its shrink-on-load, no pixel decoded): the shared image
itself when the shrink is the same, else (JPEG only) the mean of each k × k block of it,
k the ratio of the two JPEG shrink factors, its last partial blocks padded by repeating the
edge as libjpeg's scaled decode does. From there it runs exactly the single transform's
steps, so the outputs have exactly `/transform`'s dimensions. Pixels differ only where the
block means differ from libjpeg's scaled IDCT: tests/test_multi.py holds them within a mean
absolute difference of 2 per channel (at most ~1.5 measured on the corpus); a task whose
shrink-on-load is the shared one gets the very bytes of `/transform`.

Separate decodes (each task exactly `transform.transform`) instead of a shared one:

* `animated=true` tasks on a multi-frame input: an animation is decoded frame by frame as a
  strip (engine/animation.py), a different decode from the still image the others share;
* WebP, SVG and PDF tasks whose load scale differs from the others' (`_groups`), and JPEG
  tasks whose own scaled decode would be small (`JPEG_SHARE_MIN_PIXELS`): there the shared
  decode would not be within the tolerance;
* when fewer than two tasks could share a decode (nothing to save);
* when the shared image would take more than `SHARED_DECODE_LIMIT` bytes (256 MiB):
  bounded memory before speed;
* when the source cannot be loaded or decoded: each task then reports exactly the error of
  its own `/transform`.

Runs in one worker thread under one permit (engine/core.py `Engine.transform_many`); every
task's outcome, success or failure, is its own: one task's encode error fails that task only.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyvips

from imaged.engine import animation, deadline, geometry, vips
from imaged.engine.encode import encode
from imaged.engine.load import image_error, load_checked, orientation
from imaged.engine.options import Limits, TransformOptions, TransformResult
from imaged.engine.transform import (
    SCALED_LOADS,
    decode,
    load_shrink,
    process,
    resize_scale,
    shrunk,
    transform,
)
from imaged.errors import ImagedError

MIB = 1024 * 1024
# Largest shared decoded image (after the sRGB import); above it tasks decode separately.
SHARED_DECODE_LIMIT = 256 * MIB
# A JPEG task decodes alone when its own scaled decode would have fewer pixels than this
# and the shared decode is larger (`_groups`).
JPEG_SHARE_MIN_PIXELS = 320 * 320

Outcome = TransformResult | Exception


@dataclass
class Results:
    """Each task's outcome (None until it is done), the worker time charged to it (a
    shared decode is split evenly among the tasks that share it) and whether it was made
    from a shared decode. Filled in as tasks end, so the tasks done before an operation
    time limit keep their outcomes."""

    outcomes: list[Outcome | None]
    seconds: list[float] = field(default_factory=list)
    shared: list[bool] = field(default_factory=list)

    @classmethod
    def empty(cls, tasks: int) -> Results:
        return cls([None] * tasks, [0.0] * tasks, [False] * tasks)


def image_bytes(image: pyvips.Image) -> int:
    """The memory `image` takes once rendered."""
    return int(image.width * image.height * image.bands * vips.BYTES_PER_BAND[image.format])


def transform_many(
    data: bytes,
    fmt: str,
    options: Sequence[TransformOptions],
    limits: Limits,
    results: Results | None = None,
    shared_limit: int = SHARED_DECODE_LIMIT,
) -> Results:
    """Every task of `options` on `data` (detected as `fmt`), sharing one decode where it
    can (module docstring); `results` is filled in place (and returned)."""
    if results is None:
        results = Results.empty(len(options))
    separate = set(range(len(options)))
    try:
        first = load_checked(data, fmt, limits)
    except ImagedError:
        first = None
    if first is not None:
        for group in _groups(fmt, first, options):
            with deadline.scope():  # the shared image is done with after its group
                if _run_group(data, fmt, first, options, group, results, shared_limit):
                    separate -= set(group)
    for index in sorted(separate):
        _run(results, index, functools.partial(transform, data, fmt, options[index], limits))
    return results


def _groups(fmt: str, first: pyvips.Image, options: Sequence[TransformOptions]) -> list[list[int]]:
    """The tasks that can share one decode, in groups of two or more.

    JPEG: all of them (libjpeg's scaled decode is reproduced within the tolerance by block
    means of the larger decode), but for tasks whose own scaled decode would be smaller
    than `JPEG_SHARE_MIN_PIXELS`: there fine detail makes the block means differ most (up
    to 2.1 levels measured on the corpus), and such a decode costs next to nothing alone.
    Formats without shrink-on-load: all of them (the same decode).
    WebP, SVG and PDF scale on load with their own resampler or renderer, which resampling
    a larger decode does not reproduce within the tolerance (up to 17 levels measured on
    small outputs): only tasks with the very same load scale share one.
    """
    animated = animation.frame_count(first) > 1
    orient = orientation(first)
    shrinks = {
        index: load_shrink(first.width, first.height, task, orient)
        for index, task in enumerate(options)
        if not (task.animated and animated)
    }
    if fmt == "jpeg" and shrinks:
        smallest = geometry.jpeg_shrink(min(shrinks.values()))
        for index, shrink in list(shrinks.items()):
            factor = geometry.jpeg_shrink(shrink)
            pixels = -(-first.width // factor) * -(-first.height // factor)
            if factor > smallest and pixels < JPEG_SHARE_MIN_PIXELS:
                del shrinks[index]
    groups: dict[float, list[int]] = {}
    for index, shrink in shrinks.items():
        key = shrink if fmt in SCALED_LOADS and shrink > 1 else 0.0
        groups.setdefault(key, []).append(index)
    return [group for group in groups.values() if len(group) > 1]


def _run_group(
    data: bytes,
    fmt: str,
    first: pyvips.Image,
    options: Sequence[TransformOptions],
    group: list[int],
    results: Results,
    shared_limit: int,
) -> bool:
    """The tasks of `group` from one shared decode; False (nothing done) when there is none."""
    started = time.monotonic()
    shared = _shared_decode(data, fmt, first, [options[i] for i in group], shared_limit)
    if shared is None:
        return False
    decode_seconds = (time.monotonic() - started) / len(group)
    for index in group:
        results.seconds[index] = decode_seconds
        results.shared[index] = True
        _run(results, index, functools.partial(_derived, data, fmt, first, shared, options[index]))
    return True


def _run(results: Results, index: int, task: Callable[[], TransformResult]) -> None:
    """One task's outcome and time into `results`, whatever it raises."""
    started = time.monotonic()
    outcome: Outcome
    try:
        with deadline.scope():  # the task's images are done with when it ends
            outcome = task()
    except pyvips.Error as exc:
        outcome = image_error(exc)
    except Exception as exc:  # one task's failure is that task's alone
        outcome = exc
    results.seconds[index] += time.monotonic() - started
    if not isinstance(outcome, TransformResult) and deadline.killed():
        return  # stopped by the time limit: the caller says so (engine/core.py)
    results.outcomes[index] = outcome


@dataclass(frozen=True)
class _Shared:
    """The shared decode: in memory, at JPEG shrink `factor` (1 for other formats)."""

    image: pyvips.Image
    factor: int


def _shared_decode(
    data: bytes,
    fmt: str,
    first: pyvips.Image,
    options: Sequence[TransformOptions],
    shared_limit: int,
) -> _Shared | None:
    """The source decoded into memory for all of `options`; None when it would exceed
    `shared_limit` bytes or fails (the tasks then decode separately)."""
    orient = orientation(first)
    header, factor = shrunk(
        data, fmt, first, min(load_shrink(first.width, first.height, o, orient) for o in options)
    )
    if image_bytes(header) > shared_limit:
        return None
    try:
        image = decode(data, fmt, header, factor)
        if image is header:  # libvips' lazy, sequential decode
            image = deadline.track(image.copy_memory())
    except (pyvips.Error, ImagedError):
        return None
    return _Shared(image, factor)


def _derived(
    data: bytes,
    fmt: str,
    first: pyvips.Image,
    shared: _Shared,
    options: TransformOptions,
) -> TransformResult:
    """One task from the shared decode, with exactly `/transform`'s dimensions."""
    orient = orientation(first)
    own, factor = shrunk(data, fmt, first, load_shrink(first.width, first.height, options, orient))
    scale = resize_scale(own.width, own.height, options, orient)
    image = shared.image
    if factor > shared.factor:
        # libjpeg's scaled decode (1/2, 1/4, 1/8) is close to the mean of each k × k block
        # of the larger decode, its last partial blocks padded by repeating the edge; only
        # the JPEG tasks of one group have different factors.
        ratio = factor // shared.factor
        image = image.embed(0, 0, own.width * ratio, own.height * ratio, extend="copy")
        image = image.shrink(ratio, ratio)
    image = process(image, options, scale, orient)
    encoded = encode(image, options)
    return TransformResult(encoded, options.format, image.width, image.height)
