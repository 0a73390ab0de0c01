"""Pixel statistics of a decoded image (metadata.md, "Stats"), with libvips operations only.

Every value is a finite number: libvips' NaN sample deviation of a single pixel (n − 1 = 0)
becomes 0, and `deviate` is not even called on one pixel (libvips cannot return its NaN).

The statistics take four full reads of the pixels (stats, b-w histogram and Laplacian,
colour histogram). The caller either decodes once into memory and lets every pass read that,
or, when the decoded image would be too large to hold, passes `reread` so that each pass
decodes afresh, sequentially, with memory bounded by a few scanlines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyvips

from imaged.engine.colour import SIXTEEN_BIT_INTERPRETATIONS
from imaged.jsonfmt import round_k

# 3×3 Laplacian with scale 9 (default float precision), as the spec defines sharpness.
_LAPLACIAN = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
_FLOAT_SRGB = {"scrgb"}
_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4, "float": 4}
_GREY_IN_MEMORY = 64 * 1024 * 1024

Reread = Callable[[], pyvips.Image]


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _int(value: float) -> int:
    """Truncated toward zero (the spec's `min`/`max`); non-finite → 0."""
    return int(value) if math.isfinite(value) else 0


def max_alpha(interpretation: str) -> float:
    """The opaque alpha value for an interpretation."""
    if interpretation in SIXTEEN_BIT_INTERPRETATIONS:
        return 65535.0
    if interpretation in _FLOAT_SRGB:
        return 1.0
    return 255.0


def _matrix(image: pyvips.Image) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A libvips double matrix image as a (height, width) array."""
    data = image.cast("double").write_to_memory()
    return np.frombuffer(data, dtype=np.float64).reshape(image.height, image.width)


def _channel(row: np.ndarray[Any, np.dtype[np.float64]]) -> dict[str, Any]:
    return {
        "min": _int(row[0]),
        "max": _int(row[1]),
        "sum": _finite(float(row[2])),
        "squaresSum": _finite(float(row[3])),
        "mean": _finite(float(row[4])),
        "stdev": _finite(float(row[5])),
        "minX": _int(row[6]),
        "minY": _int(row[7]),
        "maxX": _int(row[8]),
        "maxY": _int(row[9]),
    }


def _without_alpha(image: pyvips.Image) -> pyvips.Image:
    while image.bands > 1 and image.hasalpha():
        image = image.extract_band(0, n=image.bands - 1)
    return image


def dominant(image: pyvips.Image) -> dict[str, int]:
    """The most frequent 16×16×16 sRGB bin, as its centre colour."""
    srgb = _without_alpha(image)
    if srgb.interpretation != "srgb" or srgb.format != "uchar" or srgb.bands != 3:
        srgb = srgb.colourspace("srgb")
    hist = srgb.hist_find_ndim(bins=16)
    peak, x, y = hist.maxpos()
    pel = hist(int(x), int(y))
    z = next((i for i, v in enumerate(pel) if v == peak), 0)
    return {"r": 16 * int(x) + 8, "g": 16 * int(y) + 8, "b": 16 * z + 8}


def _grey(image: pyvips.Image) -> pyvips.Image:
    return image.colourspace("b-w").extract_band(0)


def decoded_bytes(image: pyvips.Image) -> int:
    """The memory the decoded pixels of `image` take."""
    return int(image.width * image.height * image.bands * _BYTES.get(image.format, 8))


def compute(image: pyvips.Image, reread: Reread | None = None) -> dict[str, Any]:
    """The `stats` object of a decoded image (first page, stored orientation, own colours).

    Without `reread`, `image` is read once per pass, so it must be in memory (or loaded for
    random access); with it, the first pass reads `image` and every later one `reread()`."""
    again: Reread = reread or (lambda: image)
    table = _matrix(image.stats())
    opaque = True
    if image.hasalpha():
        opaque = bool(table[image.bands, 0] == max_alpha(image.interpretation))

    # G: band 0 of the image in b-w. Two passes read it, so it is kept in memory rather than
    # converted twice, unless that copy would be large (then converting twice is cheaper).
    grey = _grey(again())
    kept = decoded_bytes(grey) <= _GREY_IN_MEMORY
    if kept:
        grey = grey.copy_memory()
    entropy = abs(grey.hist_find().hist_entropy())
    sharpness = 0.0
    if image.width * image.height > 1:
        if not kept:  # the histogram has consumed it
            grey = _grey(again())
        kernel = pyvips.Image.new_from_array(_LAPLACIAN, scale=9)
        sharpness = grey.conv(kernel).deviate()

    return {
        "isOpaque": opaque,
        "entropy": round_k(_finite(entropy), 3),
        "sharpness": round_k(_finite(sharpness), 3),
        "dominant": dominant(again()),
        "channels": [_channel(table[band]) for band in range(1, image.bands + 1)],
    }
