"""One transform, in the processing order of transform.md: load (limits on the full-size
first load) → plan → shrink-on-load → colour → greyscale part 1 → premultiply → resize →
orientation → crop/embed → blur → unpremultiply → greyscale part 2 → 8-bit sRGB → encode.

Runs in a worker thread under one permit. Everything stays one lazy, sequential libvips
pipeline; pixels are only materialised (at output size) where an operation needs random
access: a rotation/vertical flip, and smart cropping.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from imaged.engine import animation, deadline, geometry, jpegturbo
from imaged.engine.colour import SIXTEEN_BIT_INTERPRETATIONS, import_to_srgb, to_srgb8
from imaged.engine.encode import encode
from imaged.engine.load import check_webp_frames, image_error, load, load_checked, orientation
from imaged.engine.options import (
    BOX_BLUR,
    Limits,
    ParamWarning,
    TransformOptions,
    TransformResult,
)
from imaged.engine.orient import apply_orientation, drop_orientation

# Orientations whose geometric fix reads the image out of order (rotations, vertical flip).
RANDOM_ACCESS_ORIENTATIONS = frozenset({3, 4, 5, 6, 7, 8})
# Orientations that turn the image by 90°/270°, so the requested size is swapped.
TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
GREY_GAMMA = 2.2
# Input formats whose loader renders at a `scale` for shrink-on-load (JPEG has `shrink`).
SCALED_LOADS = frozenset({"webp", "svg", "pdf"})


def transform(
    data: bytes, input_format: str, options: TransformOptions, limits: Limits
) -> TransformResult:
    """Decode `data` (detected as `input_format`), transform and encode it."""
    try:
        if options.animated:
            return _animated(data, input_format, options, limits)
        image = _pipeline(data, input_format, options, limits)
        encoded = encode(image, options)
    except pyvips.Error as exc:
        raise image_error(exc) from exc
    return TransformResult(encoded, options.format, image.width, image.height)


@dataclass
class _State:
    """What the later steps need to know about the earlier ones."""

    in_memory: bool = False
    premultiplied: bool = False
    # Where a smart crop cut (left, top): set by the first frame of an animation, then
    # reused for every later frame so the animation does not jitter.
    smart_window: tuple[int, int] | None = None


def _pipeline(data: bytes, fmt: str, options: TransformOptions, limits: Limits) -> pyvips.Image:
    image = load_checked(data, fmt, limits)
    orient = orientation(image)
    decoded = decode(
        data,
        fmt,
        *shrunk(data, fmt, image, load_shrink(image.width, image.height, options, orient)),
    )
    scale = resize_scale(decoded.width, decoded.height, options, orient)
    return process(decoded, options, scale, orient, _State())


def load_shrink(width: int, height: int, options: TransformOptions, orient: int) -> float:
    """The overall scale-down the decoder may take off a full-size `width`×`height` image
    (1: none). Greyscale requests and plain re-encodes decode at full size (no
    shrink-on-load)."""
    if options.greyscale or (options.width is None and options.height is None):
        return 1.0
    hs, vs = shrink_factors(width, height, options, orient)
    return min(hs, vs)


def shrink_factors(
    width: int, height: int, options: TransformOptions, orient: int
) -> tuple[float, float]:
    """The scale-down (hs, vs) of a `width`×`height` decoded image, before orientation."""
    if options.width is None and options.height is None:
        return 1.0, 1.0
    if orient in TRANSPOSING_ORIENTATIONS:
        target_width, target_height = options.height, options.width
    else:
        target_width, target_height = options.width, options.height
    return geometry.resolve_shrink(width, height, target_width, target_height, options.fit)


def resize_scale(
    width: int, height: int, options: TransformOptions, orient: int
) -> tuple[float, float]:
    """The resize step's (xscale, yscale) for a `width`×`height` decoded image."""
    hs, vs = shrink_factors(width, height, options, orient)
    return 1 / hs, 1 / vs


def process(
    image: pyvips.Image,
    options: TransformOptions,
    scale: tuple[float, float],
    orient: int,
    state: _State | None = None,
) -> pyvips.Image:
    """Steps 5–15 on one decoded image (or one frame), resized by `scale` (xscale, yscale;
    (1, 1): no resize): the one geometry of the single transform, its animation frames and
    engine/multi.py's tasks."""
    if state is None:
        state = _State()
    image = import_to_srgb(drop_orientation(image))
    if options.greyscale:
        image = _gamma(image, 1 / GREY_GAMMA).colourspace("b-w")

    resize = scale != (1, 1)
    band_format = image.format
    if image.hasalpha() and (resize or options.blur is not None):
        image = image.premultiply().cast(band_format)
        state.premultiplied = True
    if resize:
        xscale, yscale = scale
        image = deadline.track(image.resize(xscale, vscale=yscale, kernel=options.kernel))
    if orient in RANDOM_ACCESS_ORIENTATIONS:
        image = _materialise(image, state)
    image = apply_orientation(image, orient)
    image = _crop_or_embed(image, options, state)
    image = deadline.track(_blur(image, options))
    if state.premultiplied:
        image = image.unpremultiply()
    if image.format != band_format:
        image = image.cast(band_format)
    if options.greyscale:
        image = _gamma(image, GREY_GAMMA)
    # Tracked stages can be killed by the operation time limit even when their inputs
    # are already cached (e.g. a huge blur over a small, fully decoded image).
    return deadline.track(to_srgb8(image))


def _animated(data: bytes, fmt: str, options: TransformOptions, limits: Limits) -> TransformResult:
    """`animated=true`: every frame of a multi-frame input when the output format can hold
    an animation; otherwise the still-image transform (first frame), with a warning when
    frames were dropped."""
    if options.format in animation.ANIMATED_OUTPUTS:  # before libvips reads the frames
        check_webp_frames(data, fmt, limits.max_frames)
    first = load_checked(data, fmt, limits)
    strip = None
    if options.format in animation.ANIMATED_OUTPUTS:
        strip = animation.load_strip(data, fmt, limits, first)
    if strip is None:
        image = _pipeline(data, fmt, options, limits)
        warnings: tuple[ParamWarning, ...] = ()
        if animation.frame_count(first) > 1 and options.format not in animation.ANIMATED_OUTPUTS:
            warnings = (animation.cannot_animate(options.format),)
        encoded = encode(image, options)
        return TransformResult(encoded, options.format, image.width, image.height, 1, warnings)
    image = _frames_pipeline(strip, options, limits)
    encoded = encode(image, options)
    frames = animation.encoded_frames(encoded, options.format, limits)
    return TransformResult(
        encoded, options.format, image.width, animation.frame_height(image), frames
    )


def _frames_pipeline(
    strip: animation.Strip, options: TransformOptions, limits: Limits
) -> pyvips.Image:
    """Steps 5–15 on every frame with one geometry, computed from the frame size. No EXIF
    orientation (animation.md) and no shrink-on-load (GIF has none; libvips decodes animated
    WebP at full size whatever `scale` says).

    Without a resize, crop, padding or blur every step works pixel by pixel, so the strip
    goes through as one image. Otherwise each frame is rendered into memory at its output
    size, first to last (so the sequential strip is read in order): a lazy pipeline per frame
    joined into one would keep every frame's buffers alive until the save ends (≈ 3.5 MB per
    1000-px frame), so memory would grow with frames × input size; and a frame's stages are
    tracked for the time limit only while it renders (`deadline.scope`). The frames held
    are output-sized, so all of them together must fit the pixel limit. A smart crop picks
    its window on the first frame, and every later frame is cut at that same window.
    """
    if options.width is None and options.height is None and options.blur is None:
        return animation.join(
            [process(strip.image, options, (1, 1), 0, _State())],
            strip,
            options.format,
            strip.frame_height,
        )
    scale = resize_scale(strip.width, strip.frame_height, options, 0)
    first = _State()
    frames: list[pyvips.Image] = []
    for index in range(strip.frames):
        state = first if index == 0 else _State(smart_window=first.smart_window)
        with deadline.scope():
            frame = process(strip.frame(index), options, scale, 0, state)
            if index == 0:
                animation.check_output(frame, strip.frames, limits)
            frames.append(frame.copy_memory())
    # Tracked, so the time limit also stops the save, which reads the frames from memory.
    return deadline.track(animation.join(frames, strip, options.format, frames[0].height))


def shrunk(data: bytes, fmt: str, image: pyvips.Image, shrink: float) -> tuple[pyvips.Image, int]:
    """The (lazy) load of `data` that `decode` decodes for the overall scale-down `shrink`,
    per transform.md "Shrink-on-load" (`image`, the full-size first load, when none
    applies), and the JPEG shrink factor (1 for other formats)."""
    if fmt == "jpeg":
        factor = geometry.jpeg_shrink(shrink)
        return (load(data, fmt, shrink=factor) if factor > 1 else image), factor
    if fmt in SCALED_LOADS and shrink > 1:
        return load(data, fmt, scale=1 / shrink), 1
    return image, 1


def decode(data: bytes, fmt: str, header: pyvips.Image, factor: int) -> pyvips.Image:
    """The pixels of `header` (a `shrunk` load at JPEG shrink `factor`): from libjpeg-turbo
    where it decodes them like libvips (engine/jpegturbo.py), in memory; else `header`
    itself, which libvips decodes lazily."""
    if fmt == "jpeg":
        return jpegturbo.decode(data, fmt, header, factor)
    return header


def _materialise(image: pyvips.Image, state: _State) -> pyvips.Image:
    """Render into memory (at the current, usually reduced, size) for random access."""
    if state.in_memory:
        return image
    state.in_memory = True
    return deadline.track(image.copy_memory())


def _gamma(image: pyvips.Image, exponent: float) -> pyvips.Image:
    """libvips `gamma` on the colour bands only; alpha is left alone."""
    if not image.hasalpha():
        return image.gamma(exponent=exponent)
    colour = image.extract_band(0, n=image.bands - 1)
    alpha = image.extract_band(image.bands - 1)
    return colour.gamma(exponent=exponent).bandjoin(alpha)


def _opaque_black(image: pyvips.Image) -> list[float]:
    if not image.hasalpha():
        return [0.0] * image.bands
    opaque = 65535.0 if image.interpretation in SIXTEEN_BIT_INTERPRETATIONS else 255.0
    return [0.0] * (image.bands - 1) + [opaque]


def _crop_or_embed(image: pyvips.Image, options: TransformOptions, state: _State) -> pyvips.Image:
    width, height = image.width, image.height
    target_width = options.width or width
    target_height = options.height or height
    if (target_width, target_height) == (width, height):
        return image
    gravity = geometry.gravity(options.position)
    if options.fit == "cover":
        crop_width, crop_height = geometry.cover_size(width, height, target_width, target_height)
        if (crop_width, crop_height) == (width, height):
            return image
        if gravity in geometry.SMART_CROPS and state.smart_window is not None:
            left, top = state.smart_window
            return image.extract_area(left, top, crop_width, crop_height)
        if gravity in geometry.SMART_CROPS:
            image = _materialise(image, state)
            cropped = image.smartcrop(
                crop_width, crop_height, interesting=gravity, premultiplied=state.premultiplied
            )
            state.smart_window = (-cropped.xoffset, -cropped.yoffset)
            return cropped
        left, top = geometry.crop_offsets(gravity, width, height, crop_width, crop_height)
        return image.extract_area(left, top, crop_width, crop_height)
    if options.fit == "contain":
        if gravity in geometry.SMART_CROPS:
            gravity = geometry.CENTRE
        canvas_width, canvas_height = geometry.contain_size(
            width, height, target_width, target_height
        )
        left, top = geometry.embed_offsets(gravity, width, height, canvas_width, canvas_height)
        return image.embed(
            left,
            top,
            canvas_width,
            canvas_height,
            extend="background",
            background=_opaque_black(image),
        )
    return image


def _blur(image: pyvips.Image, options: TransformOptions) -> pyvips.Image:
    if options.blur is None:
        return image
    if options.blur == BOX_BLUR:
        mask = pyvips.Image.new_from_list([[1, 1, 1], [1, 1, 1], [1, 1, 1]], scale=9)
        return image.conv(mask)
    return image.gaussblur(float(options.blur), precision="integer", min_ampl=0.2)
