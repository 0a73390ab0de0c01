"""The quality column: SSIMULACRA2 of an output against a float Lanczos reference.

Speed is only comparable at comparable quality, so every peer's output is scored the same
way. The reference is made from the *full* decode of the input (no shrink-on-load), turned
the way the output is (EXIF orientation), colour-managed to sRGB, resized in float with
lanczos3 to exactly the output's size, and only then rounded to 8 bits. Alpha is flattened
onto mid-grey on both sides. The score is the `ssimulacra2` package's (pip extra `bench`):
100 = identical, ~90 visually lossless, ~70 high quality, ~50 medium; higher is better.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import pyvips

GREY = [128.0, 128.0, 128.0]


def _srgb8(image: pyvips.Image) -> pyvips.Image:
    """3-band 8-bit sRGB, alpha flattened onto grey."""
    if image.hasalpha():
        image = image.flatten(background=GREY)
    if image.interpretation != "srgb":
        image = image.colourspace("srgb")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image.cast("uchar") if image.format == "uchar" else (image + 0.5).cast("uchar")


@cache
def _full(path: Path) -> pyvips.Image:
    """The whole input decoded at full size, upright, in float sRGB."""
    image = pyvips.Image.new_from_file(str(path), access="random").autorot()
    if image.get_typeof("icc-profile-data"):
        image = image.icc_transform("srgb", embedded=True, intent="perceptual")
    elif image.interpretation == "cmyk":
        image = image.icc_transform("srgb", input_profile="cmyk", intent="perceptual")
    if image.hasalpha():
        image = image.flatten(background=GREY)
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
    return image.cast("float").copy_memory()


def reference(path: Path, width: int, height: int) -> pyvips.Image:
    """The float lanczos3 reference of `path` at exactly width × height, as 8-bit sRGB."""
    full = _full(path)
    scaled = full.resize(width / full.width, vscale=height / full.height, kernel="lanczos3")
    if (scaled.width, scaled.height) != (width, height):  # rounding of the scale
        scaled = scaled.embed(0, 0, width, height, extend="copy")
    return _srgb8(scaled.copy(interpretation=full.interpretation))


def _png(image: pyvips.Image) -> io.BytesIO:
    return io.BytesIO(image.pngsave_buffer(compression=1))


def score(path: Path, output: bytes) -> float | None:
    """SSIMULACRA2 of encoded `output` against the reference of input `path` (None when the
    output cannot be decoded or the scorer is not installed)."""
    try:
        from ssimulacra2 import compute_ssimulacra2
    except ImportError:
        return None
    try:
        distorted = _srgb8(pyvips.Image.new_from_buffer(output, "").copy_memory())
    except pyvips.Error:
        return None
    ref = reference(path, distorted.width, distorted.height)
    return float(compute_ssimulacra2(_png(ref), _png(distorted)))
