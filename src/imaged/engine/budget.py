"""The memory budget (resources.md): what one image operation will need, from the header.

`estimate_*` compute the working set of an operation from the input's header alone (no pixel
is decoded): the decoded size at the shrink-on-load scale the transform will use (width ×
height × bands × bytes per band, × frames when an animation is kept), times how much of it
the decoder and the pipeline hold at once, plus the output buffer bound, plus an
output-sized copy where the pipeline materialises (a rotation, a smart crop), plus a small
constant for libvips' per-operation buffers. The reservation of an operation is that
estimate plus the input bytes, which stay in memory for the whole operation.

How much of the decoded image is held at once depends on the decoder (`HELD`, measured on
the corpus by tests/test_budget.py):

* plain JPEGs are decoded whole by libjpeg-turbo (engine/jpegturbo.py): all of it, as a
  numpy array; libvips' own buffers come on top (`TURBO_EXTRA`);
* libvips streams PNG, TIFF, GIF and CMYK JPEGs line by line, but a resize keeps a window
  of source lines (libvips' shrink and reduce caches) and a statistics pass copies the
  decode into memory;
* WebP, HEIF/AVIF, SVG and PDF decoders render the whole (scaled) image at once, WebP in
  several copies.

The estimate is checked against measured peaks for every corpus image and workload
(transform to 400 px, full-size convert, metadata with stats): at least the measured peak
(libvips' tracked high-water mark plus the Python buffers: the libjpeg-turbo decode and the
encoded output), at most 3× it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyvips

from imaged.engine import animation, geometry, jpegturbo, vips
from imaged.engine.load import check_webp_frames, image_error, load, load_checked, orientation
from imaged.engine.metadata import DECODE_IN_MEMORY
from imaged.engine.options import Limits, MetadataOptions, TransformOptions
from imaged.engine.transform import (
    RANDOM_ACCESS_ORIENTATIONS,
    TRANSPOSING_ORIENTATIONS,
    load_shrink,
    shrink_factors,
)

# libvips' buffers of any operation, whatever the size: region buffers, the encoder's
# state, the header and its metadata (measured ≈ 0.3–1.4 MB on the smallest corpus files).
BASE = 1024 * 1024

# A resize's own buffers (the kernels' source-line windows), whatever the size.
RESIZE_BASE = 1536 * 1024

# Kinds of operation: a transform that resizes, one that keeps the full size, metadata that
# decodes pixels (stats, placeholders), metadata from the header alone.
RESIZE = "resize"
FULL = "full"
PIXELS = "pixels"
HEADER = "header"

# Share of the decoded image held at once, per decoder family and kind of operation.
HELD: dict[str, dict[str, float]] = {
    "turbo": {RESIZE: 1.0, FULL: 1.0, PIXELS: 1.0},
    "stream": {RESIZE: 0.8, FULL: 0.7, PIXELS: 1.8},
    "whole": {RESIZE: 1.8, FULL: 0.9, PIXELS: 1.8},
    "webp": {RESIZE: 1.6, FULL: 5.5, PIXELS: 6.5},
    "svg": {RESIZE: 1.5, FULL: 1.5, PIXELS: 4.0},
}
# A resize of a streamed image with alpha premultiplies first, and holds more source lines.
STREAM_ALPHA_RESIZE = 1.5
# libvips' buffers on top of a libjpeg-turbo decode (the rebuilt image, colour conversion).
TURBO_EXTRA = {RESIZE: 0.3, FULL: 0.15, PIXELS: 0.4}
_FAMILIES = {
    "png": "stream",
    "tiff": "stream",
    "gif": "stream",
    "jpeg": "stream",
    "webp": "webp",
    "svg": "svg",
    "pdf": "svg",
}


@dataclass(frozen=True)
class Header:
    """What the estimate reads from an input's header."""

    format: str
    width: int
    height: int
    bands: int
    bytes_per_band: int
    frames: int
    orientation: int
    alpha: bool = False
    header: pyvips.Image | None = None  # for the libjpeg-turbo decision

    @classmethod
    def of(cls, image: pyvips.Image, fmt: str, orientation: int) -> Header:
        return cls(
            format=fmt,
            width=image.width,
            height=image.height,
            bands=image.bands,
            bytes_per_band=vips.BYTES_PER_BAND.get(image.format, 8),
            frames=animation.frame_count(image),
            orientation=orientation,
            alpha=bool(image.hasalpha()),
            header=image,
        )


@dataclass(frozen=True)
class Estimate:
    """An operation's working set, term by term (bytes)."""

    decoded: int  # the decoded image at the decode scale
    held: int  # the part of it, and the decoder's copies, held at once
    output: int  # the output buffer bound
    copies: int  # output-sized copies the pipeline materialises

    @property
    def total(self) -> int:
        return BASE + self.held + self.output + self.copies


def _family(header: Header, shrink: int, data: bytes | None) -> str:
    """The decoder family; JPEGs as engine/transform.py decides (the header at `shrink`)."""
    if header.format == "jpeg" and data is not None and header.header is not None:
        scaled = header.header if shrink == 1 else load(data, "jpeg", shrink=shrink)
        if jpegturbo.decision(data, "jpeg", scaled, shrink) == jpegturbo.TURBO:
            return "turbo"
    return _FAMILIES.get(header.format, "whole")


def _held(decoded: int, family: str, kind: str, alpha: bool = False) -> int:
    share = HELD[family][kind] + (TURBO_EXTRA[kind] if family == "turbo" else 0.0)
    if family == "stream" and kind == RESIZE and alpha:
        share = STREAM_ALPHA_RESIZE
    return math.ceil(decoded * share)


def transform(header: Header, options: TransformOptions, data: bytes | None = None) -> Estimate:
    """The working set of `transform` (engine/transform.py) on this input."""
    width, height = header.width, header.height
    orient = 0 if options.animated else header.orientation
    resizing = options.width is not None or options.height is not None
    hs, vs = shrink_factors(width, height, options, orient)
    shrink = load_shrink(width, height, options, orient)
    jpeg_factor = 1
    decode_width, decode_height = width, height
    if header.format == "jpeg":
        jpeg_factor = geometry.jpeg_shrink(shrink)
        decode_width = -(-width // jpeg_factor)
        decode_height = -(-height // jpeg_factor)
    elif header.format in ("svg", "pdf") and shrink > 1:
        decode_width = max(1, round(width / shrink))
        decode_height = max(1, round(height / shrink))
    frames = 1
    if options.animated and options.format in animation.ANIMATED_OUTPUTS:
        frames = max(1, header.frames)
    # The output: the resized size, or the requested box when padding makes it larger.
    out_width = max(1, round(width / hs))
    out_height = max(1, round(height / vs))
    if orient in TRANSPOSING_ORIENTATIONS:
        out_width, out_height = out_height, out_width
    if options.fit == "contain":  # padded to the requested box
        out_width = max(out_width, options.width or 0)
        out_height = max(out_height, options.height or 0)
    out_bands = 4 if header.bands in (2, 4, 5) else 3
    output = out_width * out_height * out_bands * frames
    decoded = decode_width * decode_height * header.bands * header.bytes_per_band * frames
    kind = RESIZE if shrink > 1 or resizing else FULL
    family = _family(header, jpeg_factor, data)
    copies = 0
    random_access = orient in RANDOM_ACCESS_ORIENTATIONS
    smart = geometry.gravity(options.position) in geometry.SMART_CROPS
    if random_access or smart or frames > 1:
        copies = output  # rendered into memory at the output size
    held = _held(decoded, family, kind, header.alpha) + (RESIZE_BASE if hs > 1 or vs > 1 else 0)
    return Estimate(decoded, held, output, copies)


def metadata(header: Header, options: MetadataOptions, data: bytes | None = None) -> Estimate:
    """The working set of `metadata.extract` (engine/metadata.py) on this input."""
    if not options.needs_pixels:
        return Estimate(0, 0, 0, 0)
    decoded = header.width * header.height * header.bands * header.bytes_per_band
    family = _family(header, 1, data)
    if decoded > DECODE_IN_MEMORY and family != "turbo":
        # Decoded again for every pass, a few scanlines at a time (engine/metadata.py).
        return Estimate(decoded, _held(DECODE_IN_MEMORY, family, FULL) // 8, 0, 0)
    return Estimate(decoded, _held(decoded, family, PIXELS), 0, 0)


def _header(data: bytes, fmt: str, limits: Limits) -> Header:
    image = load_checked(data, fmt, limits)
    try:
        return Header.of(image, fmt, orientation(image))
    except pyvips.Error as exc:
        raise image_error(exc) from exc


def transform_cost(data: bytes, fmt: str, options: TransformOptions, limits: Limits) -> int:
    """The bytes a transform reserves: its estimate plus the input, held throughout. Reads
    the header (in a worker thread) with the checks the transform makes first, so an input
    it would refuse is refused here with the same text."""
    if options.animated and options.format in animation.ANIMATED_OUTPUTS:
        check_webp_frames(data, fmt, limits.max_frames)
    try:
        return transform(_header(data, fmt, limits), options, data).total + len(data)
    except pyvips.Error as exc:
        raise image_error(exc) from exc


def metadata_cost(data: bytes, fmt: str, options: MetadataOptions, limits: Limits) -> int:
    """The bytes a metadata extraction reserves (the header alone when no pixel is read)."""
    if not options.needs_pixels:
        return BASE + len(data)
    try:
        return metadata(_header(data, fmt, limits), options, data).total + len(data)
    except pyvips.Error as exc:
        raise image_error(exc) from exc
