"""Decoding from memory with the load options and input limits of formats.md.

Every decode in imaged starts with `load`, so the pixel, channel and SVG-size limits are
checked on the header (before any pixel is decoded) in one place; plain JPEG pixels are then
decoded by libjpeg-turbo (engine/jpegturbo.py), everything else by libvips.
"""

from __future__ import annotations

from typing import Any

import pyvips

from imaged.engine import deadline
from imaged.engine.formats import LOADERS, webp_frames
from imaged.engine.options import Limits
from imaged.errors import ImageError

MAX_BANDS = 5
PIXEL_LIMIT_EXCEEDED = "Input image exceeds pixel limit"
SVG_MAX_SIDE = 32767
_MULTI_PAGE = {"gif", "webp", "tiff", "pdf"}
# libvips (libwebp's demuxer) finds WebP frame k by walking the frame list from the start,
# so reading the header of an n-frame WebP takes n² steps: 12 s for 107 000 frames, and a
# request reads it two or three times. Beyond this many frames (or --max-frames, if
# larger) a WebP is refused before libvips sees it, on every route.
WEBP_FRAME_CEILING = 10_000


def vips_message(exc: pyvips.Error) -> str:
    """A short, single-line libvips error text (no tracebacks, no repeated lines)."""
    lines: list[str] = []
    for raw in f"{exc.message}\n{exc.detail or ''}".splitlines():
        line = raw.strip()
        # libvips' own error domain is also called "image"; our ImageError adds the prefix.
        line = line.removeprefix("image: ")
        if line and line not in lines and not line.startswith("unable to call"):
            lines.append(line)
    return "; ".join(lines)[:500] or "processing failed"


def image_error(exc: pyvips.Error) -> ImageError:
    return ImageError(vips_message(exc))


def load(data: bytes, fmt: str, **options: Any) -> pyvips.Image:
    """First page/frame of `data` (detected as `fmt`), lazily: only the header is read here.

    Sequential access, failing on the first decoder warning (formats.md, "Load options").
    `options` are loader options such as `shrink` (JPEG) or `scale` (WebP/SVG/PDF) for a
    shrink-on-load reload; the limits are checked on the first, full-size load
    (`load_checked`).
    """
    kwargs: dict[str, Any] = {"access": "sequential", "fail_on": "warning"}
    if fmt in _MULTI_PAGE:
        kwargs.update(page=0, n=1)
    if fmt in ("svg", "pdf") and "scale" not in options:
        kwargs["dpi"] = 72
    kwargs.update(options)
    try:
        # From a memory source rather than `*load_buffer`, which copies the whole input into
        # libvips on every load (3 MB per 12 MP JPEG, ~25 MB for 48 MP). The caller keeps
        # `data` alive for the whole operation, which is all the source needs.
        source = pyvips.Source.new_from_memory(data)
        loader = LOADERS[fmt].replace("_buffer", "_source")
        return deadline.track(pyvips.Operation.call(loader, source, **kwargs))
    except pyvips.Error as exc:
        if vips_message(exc) == "processing failed":
            # Some loaders (PNG) fail on a bad header without any text; say what failed.
            raise ImageError(f"invalid {fmt} image header") from exc
        raise image_error(exc) from exc


def check_limits(image: pyvips.Image, fmt: str, limits: Limits) -> None:
    """Pixel limit, side limit (an extension), band limit, SVG render-size cap (formats.md)."""
    if image.width * image.height > limits.pixel_limit:
        raise ImageError(PIXEL_LIMIT_EXCEEDED)
    if max(image.width, image.height) > limits.side_limit:
        raise ImageError(f"Input image width or height exceeds {limits.side_limit} pixels")
    if image.bands > MAX_BANDS:
        raise ImageError("Input image exceeds channel limit")
    if fmt == "svg" and (image.width > SVG_MAX_SIDE or image.height > SVG_MAX_SIDE):
        raise ImageError(f"Input SVG image exceeds {SVG_MAX_SIDE}x{SVG_MAX_SIDE} pixel limit")


def too_many_frames(frames: int, limit: int) -> ImageError:
    return ImageError(f"Input image has too many frames ({frames} > {limit})")


def check_webp_frames(data: bytes, fmt: str, limit: int) -> None:
    """At most `limit` frames in a WebP, counted without libvips (`WEBP_FRAME_CEILING`)."""
    # Counting the chunk name is an upper bound and fast; the chunk walk is exact.
    if fmt == "webp" and data.count(b"ANMF") > limit:
        frames = webp_frames(data)
        if frames > limit:
            raise too_many_frames(frames, limit)


def load_checked(data: bytes, fmt: str, limits: Limits) -> pyvips.Image:
    """`load` at full size plus the input limits: the first load of every operation."""
    check_webp_frames(data, fmt, max(limits.max_frames, WEBP_FRAME_CEILING))
    image = load(data, fmt)
    check_limits(image, fmt, limits)
    return image


def orientation(image: pyvips.Image) -> int:
    """The EXIF orientation tag (0 when absent)."""
    if image.get_typeof("orientation") == 0:
        return 0
    try:
        return int(image.get("orientation"))
    except (pyvips.Error, TypeError, ValueError):
        return 0
