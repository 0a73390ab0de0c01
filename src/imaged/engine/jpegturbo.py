"""JPEG pixels from libjpeg-turbo (simplejpeg) instead of libvips' `jpegload`.

Why: the JPEG decoder of the bundled libvips (mozjpeg) takes 1.3–2.5× the CPU of
libjpeg-turbo for the *same pixels* (docs/performance.md), and the decode is most of every
JPEG request. Both are libjpeg with the accurate integer IDCT and fancy upsampling, so for
the inputs this module accepts the decoded pixels are identical (tests/test_jpegturbo.py
compares them on the corpus and on synthetic files at shrink 1, 2, 4 and 8).

What stays with libvips: the header read (dimensions, ICC profile, EXIF, orientation, the
input limits) happens first, exactly as before, and its metadata is copied onto the decoded
image; everything after the decode is the usual libvips pipeline on an image in memory.
Only plain inputs take this path (`decision`): 8-bit, Huffman-coded (baseline, extended or
progressive), 1 or 3 components. CMYK/YCCK (libvips inverts Adobe CMYK), 12-bit, lossless
and arithmetic-coded files keep `jpegload`.

Memory and time stay bounded: the decoded image is held whole, so the path is only taken
up to `MAX_DECODED_BYTES`; above that libvips keeps streaming it a few lines at a time. A
libjpeg-turbo decode cannot be interrupted by the operation time limit (engine/deadline.py),
so it is bounded instead: at most `MAX_DECODED_BYTES` of output from at most `MAX_SCANS`
scans (a progressive file with thousands of tiny scans is the known slow JPEG), and the
image it returns is tracked like every libvips load, so later stages stop at the limit.

Warnings (`fail_on = warning` in formats.md): libjpeg-turbo is called in strict mode, where
a warning (truncated or corrupt data) is an error. Any failure here falls back to the libvips
path, which then produces exactly today's outcome — the same 400 text, or the same image.

`IMAGED_BENCH_LIBVIPS_JPEG=1` forces the libvips path: it exists only for the benchmark's
A/B (bench/README.md) and is not a setting.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np
import pyvips
import simplejpeg

from imaged.engine import deadline

FORCE_LIBVIPS_ENV = "IMAGED_BENCH_LIBVIPS_JPEG"
_FORCED = os.environ.get(FORCE_LIBVIPS_ENV, "") not in ("", "0")
# Largest decoded image held in memory (a 12 MP RGB photo at full size takes 35 MiB).
MAX_DECODED_BYTES = 64 * 1024 * 1024
# Far more scans than encoders write (libjpeg's default progressive script has 10).
MAX_SCANS = 64

TURBO = "libjpeg-turbo"
# Start-of-frame markers libjpeg-turbo decodes like libvips: baseline, extended, progressive
# (all Huffman). SOF3 is lossless, SOF5–7 hierarchical, SOF9–15 arithmetic-coded.
_HUFFMAN_FRAMES = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive"}
_OTHER_FRAMES = frozenset(range(0xC3, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])  # markers without a length
_SOS = 0xDA
_MAX_SEGMENTS = 1000
_SCAN_MARKER = b"\xff\xda"
# Header items that are not copied: the image's own geometry (set by `copy`) and the
# per-tag EXIF strings libvips derives from `exif-data` (which is copied; nothing reads
# the derived strings after the decode, and there are ~60 of them per camera photo).
_OWN_FIELDS = frozenset(
    {"width", "height", "bands", "format", "coding", "interpretation", "filename"}
    | {"xoffset", "yoffset", "xres", "yres"}
)
_DERIVED_PREFIX = "exif-ifd"
_INTERPRETATIONS = {1: "b-w", 3: "srgb"}


class Frame(NamedTuple):
    """The start-of-frame header of a JPEG."""

    marker: int
    precision: int
    height: int
    width: int
    components: int


def frame(data: bytes) -> Frame | None:
    """The first frame header, or None when none comes before the first scan (or the
    markers are malformed: libvips then reports what is wrong)."""
    pos = 2
    for _ in range(_MAX_SEGMENTS):
        if pos + 4 > len(data) or data[pos] != 0xFF:
            return None
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        marker = data[pos + 1]
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == _SOS or pos + 4 > len(data):
            return None
        if marker in _HUFFMAN_FRAMES or marker in _OTHER_FRAMES:
            if pos + 10 > len(data):
                return None
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return Frame(marker, data[pos + 4], height, width, data[pos + 9])
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return None


def _scaled(size: int, num: int, denom: int) -> int:
    """libjpeg's scaled dimension (TJSCALED): size × num / denom, rounded up."""
    return (size * num + denom - 1) // denom


def _exact_scale(width: int, height: int, shrink: int) -> bool:
    """Whether simplejpeg, asked for at least ⌈size / shrink⌉, picks exactly 1/shrink.

    It takes the smallest libjpeg-turbo factor k/8 that reaches the minimum size; on tiny
    images a smaller factor can give the same dimensions (3 px at 3/8 and at 1/2 are both
    2 px) but other pixels than libvips' 1/shrink, so those stay with libvips.
    """
    min_width, min_height = _scaled(width, 1, shrink), _scaled(height, 1, shrink)
    return not any(
        _scaled(width, k, 8) >= min_width and _scaled(height, k, 8) >= min_height
        for k in range(1, 8 // shrink)
    )


def decision(data: bytes, fmt: str, header: pyvips.Image, shrink: int) -> str:
    """`TURBO` when `data` is decoded by libjpeg-turbo at 1/`shrink`, else why libvips does.

    `header` is libvips' (lazy) load of `data` at that shrink: its view of the image must
    be the one libjpeg-turbo will produce.
    """
    if fmt != "jpeg":
        return f"libvips: {fmt} input"
    if _FORCED:
        return f"libvips: forced by {FORCE_LIBVIPS_ENV}"
    found = frame(data)
    if found is None:
        return "libvips: no frame header"
    marker, precision, height, width, components = found
    if marker not in _HUFFMAN_FRAMES:
        return f"libvips: frame type SOF{marker - 0xC0}"
    if precision != 8:
        return f"libvips: {precision}-bit samples"
    if components not in _INTERPRETATIONS:
        return f"libvips: {components} components"
    if (header.bands, header.format) != (components, "uchar") or (
        header.interpretation != _INTERPRETATIONS[components]
    ):
        return f"libvips: decodes as {header.interpretation} {header.format}"
    if header.width * header.height * components > MAX_DECODED_BYTES:
        return f"libvips: decoded size above {MAX_DECODED_BYTES >> 20} MiB"
    # A sequential decode costs at most in proportion to the input; only a progressive one
    # can repeat its work per (tiny) scan.
    if _HUFFMAN_FRAMES[marker] == "progressive" and data.count(_SCAN_MARKER) > MAX_SCANS:
        return f"libvips: more than {MAX_SCANS} scans"
    # libvips keeps the top-left ⌊size / shrink⌋ of libjpeg's ⌈size / shrink⌉ output.
    if not (
        width // shrink <= header.width <= _scaled(width, 1, shrink)
        and height // shrink <= header.height <= _scaled(height, 1, shrink)
    ):
        return "libvips: frame size differs from the header"
    if shrink > 1 and not _exact_scale(width, height, shrink):
        return f"libvips: no exact 1/{shrink} scale at {width}×{height}"
    return TURBO


def decode(data: bytes, fmt: str, header: pyvips.Image, shrink: int = 1) -> pyvips.Image:
    """The decoded pixels of `header` (libvips' load of `data` at 1/`shrink`) in memory, with
    its metadata — or `header` itself, unchanged, wherever libvips keeps the decode."""
    if decision(data, fmt, header, shrink) != TURBO:
        return header
    pixels = _decode(data, header, shrink)
    if pixels is None:
        return header
    height, width, bands = pixels.shape
    image = pyvips.Image.new_from_memory(pixels.data, width, height, bands, "uchar")
    if (width, height) != (header.width, header.height):
        image = image.crop(0, 0, header.width, header.height)
    return deadline.track(_with_header(image, header))


def _decode(data: bytes, header: pyvips.Image, shrink: int) -> np.ndarray[Any, Any] | None:
    """libjpeg-turbo's strict decode, or None on any warning or error (libvips then decodes
    and reports it) and whenever its result would not match `header`."""
    options: dict[str, Any] = {}
    found = frame(data)
    if found is None:
        return None
    width, height = _scaled(found.width, 1, shrink), _scaled(found.height, 1, shrink)
    if shrink > 1:
        # The smallest libjpeg-turbo scale reaching this size: 1/shrink (`_exact_scale`).
        options = {"min_width": width, "min_height": height, "min_factor": shrink}
    try:
        pixels: np.ndarray[Any, Any] = simplejpeg.decode_jpeg(
            data, colorspace="GRAY" if header.bands == 1 else "RGB", strict=True, **options
        )
    except (ValueError, RuntimeError):
        return None
    if pixels.shape != (height, width, header.bands):
        return None
    return pixels


def _with_header(image: pyvips.Image, header: pyvips.Image) -> pyvips.Image:
    """`image` carrying `header`'s metadata: interpretation, resolution, ICC profile, EXIF
    block, orientation and every other item later steps may read."""
    out = image.copy(
        interpretation=header.interpretation,
        xres=header.xres,
        yres=header.yres,
        xoffset=header.xoffset,
        yoffset=header.yoffset,
    )
    for name in header.get_fields():
        if name in _OWN_FIELDS or name.startswith(_DERIVED_PREFIX):
            continue
        out.set_type(header.get_typeof(name), name, header.get(name))
    return out
