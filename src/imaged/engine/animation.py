"""Animated (multi-frame) inputs for `animated=true` (animation.md).

libvips loads every frame of an animation (`n=-1`) as one tall "toilet-roll" image: the
frames stacked top to bottom, `page-height` rows each, with the `delay` (ms per frame) and
`loop` (total plays, 0 = forever) metadata the GIF and WebP savers write back. The
transform (engine/transform.py) cuts that strip into frames, runs every frame through the
same steps as a still image, and joins the results into a new strip. Working per frame,
never on the strip as a whole, is what keeps frames apart: a resize kernel or a blur over
the strip would bleed one frame into the next at every seam, and the strip's height does not
scale to a whole number of frame heights.

Everything stays one lazy, sequential libvips pipeline: the saver pulls the output frame by
frame, each frame pulls its rows of the strip, and the loader decodes the input frame by
frame, so memory grows with the output, not with frames × input size.

The limits count every frame (`--max-frames`, `--pixel-limit` over all frames) and are
checked on the headers, before a pixel is decoded; the side limits apply to one frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from imaged.engine.load import PIXEL_LIMIT_EXCEEDED, load, too_many_frames
from imaged.engine.options import Limits, ParamWarning
from imaged.errors import ImageError

# Output formats that can hold an animation; every other output takes the first frame.
ANIMATED_OUTPUTS = frozenset({"gif", "webp"})
# Input formats whose libvips loader takes `n` (how many pages or frames to load).
_MULTI_FRAME_INPUTS = frozenset({"gif", "webp", "tiff", "pdf", "avif", "heic", "jxl"})
# Loaders that render every frame onto the full canvas, so an all-frames load can only fail
# on a broken file; other multi-page formats (TIFF, PDF, HEIF) may have pages of different
# sizes, which cannot form one strip: such an input is a still image (its first page).
_CANVAS_INPUTS = frozenset({"gif", "webp"})
# WebP stores the loop count in 16 bits (0 = forever); libvips counts a GIF that repeats
# 65535 times as 65536 plays, which would wrap around to "forever".
_WEBP_MAX_LOOP = 0xFFFF
OUTPUT_PIXEL_LIMIT_EXCEEDED = "Processed animation exceeds pixel limit"


def cannot_animate(fmt: str) -> ParamWarning:
    """The warning for an animated input whose output format `fmt` holds one frame."""
    return ParamWarning("animated", "true", f"{fmt} output cannot be animated; first frame used")


def frame_count(image: pyvips.Image) -> int:
    """How many frames (pages) the input has, as its loader reports it (1 when unknown)."""
    if not image.get_typeof("n-pages"):
        return 1
    try:
        return max(1, int(image.get("n-pages")))
    except (pyvips.Error, TypeError, ValueError):
        return 1


def frame_height(image: pyvips.Image) -> int:
    """The height of one frame: `page-height` when it splits the image into whole frames."""
    if image.get_typeof("page-height"):
        page_height = int(image.get("page-height"))
        if 0 < page_height < image.height and image.height % page_height == 0:
            return page_height
    return int(image.height)


@dataclass(frozen=True)
class Strip:
    """All frames of an input, stacked: `frames` frames of `width` × `frame_height`."""

    image: pyvips.Image
    frames: int
    frame_height: int

    @property
    def width(self) -> int:
        return int(self.image.width)

    def frame(self, index: int) -> pyvips.Image:
        """Frame `index` (lazy: a window onto the strip)."""
        return self.image.extract_area(0, index * self.frame_height, self.width, self.frame_height)


def load_strip(data: bytes, fmt: str, limits: Limits, first: pyvips.Image) -> Strip | None:
    """Every frame of `data`, whose first frame `first` passed the input limits; None when
    the input has one frame, or pages that cannot form one strip (then it is a still).

    The frame and pixel limits are checked on the first frame's header times the frame
    count, before the all-frames load; the strip must then hold exactly those frames.
    """
    frames = frame_count(first)
    if frames <= 1 or fmt not in _MULTI_FRAME_INPUTS:
        return None
    if frames > limits.max_frames:
        raise too_many_frames(frames, limits.max_frames)
    if first.width * first.height * frames > limits.pixel_limit:
        raise ImageError(PIXEL_LIMIT_EXCEEDED)
    try:
        strip = load(data, fmt, n=-1)
    except ImageError:
        if fmt in _CANVAS_INPUTS:
            raise
        return None
    height = frame_height(strip)
    if (strip.width, height, strip.height) != (first.width, first.height, height * frames):
        if fmt in _CANVAS_INPUTS:
            raise ImageError("frames of the animation do not match its first frame")
        return None
    return Strip(strip, frames, height)


def check_output(frame: pyvips.Image, frames: int, limits: Limits) -> None:
    """Output frames are held in memory until the save, so all of them together must stay
    within the pixel limit too (only padding, `fit=contain`, makes them larger than the
    input's)."""
    if frame.width * frame.height * frames > limits.pixel_limit:
        raise ImageError(OUTPUT_PIXEL_LIMIT_EXCEEDED)


def join(frames: list[pyvips.Image], strip: Strip, fmt: str, height: int) -> pyvips.Image:
    """The processed frames (or one processed strip) as one strip of frames `height` rows
    high, carrying the input's delays and loop count for the `fmt` saver."""
    image = pyvips.Image.arrayjoin(frames, across=1) if len(frames) > 1 else frames[0]
    image = image.copy()
    image.set_type(pyvips.GValue.gint_type, "page-height", height)
    source = strip.image
    if source.get_typeof("delay"):
        image.set_type(pyvips.GValue.array_int_type, "delay", list(source.get("delay")))
    if source.get_typeof("loop"):
        loop = int(source.get("loop"))
        if fmt == "webp":
            loop = min(loop, _WEBP_MAX_LOOP)
        image.set_type(pyvips.GValue.gint_type, "loop", loop)
    return image


def encoded_frames(data: bytes, fmt: str, limits: Limits) -> int:
    """Frames in an encoded animation (its header only). Encoders merge identical
    consecutive frames into one (summing their delays), so this can be fewer than went in."""
    return frame_count(load(data, fmt))
