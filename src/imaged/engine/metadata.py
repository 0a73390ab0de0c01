"""Metadata extraction (metadata.md, "Procedure"): runs in a worker thread under one permit.

One load serves everything: the base fields come from its header alone (no pixels are
decoded unless `stats`, `thumbhash` or `blurhash` is asked for). When pixels are needed they
are decoded once into memory, and the statistics and the placeholders (ThumbHash and BlurHash
both read one nearest-neighbour reduction of the decoded pixels) all read that one decode —
unless the decoded image would exceed `DECODE_IN_MEMORY` (an image under the pixel limit can
take 800 MB: 100 MP of 16-bit RGBA, from a PNG of a few hundred kB). Then every pass decodes
it again, sequentially, and memory stays at a few scanlines: slower, but a hostile upload
cannot take the server's memory.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import pyvips

from imaged.engine import blurhash, jpegturbo, stats, thumbhash
from imaged.engine.colour import has_profile
from imaged.engine.exif_fields import exif_object
from imaged.engine.load import image_error, load, load_checked, orientation
from imaged.engine.options import Limits, MetadataOptions, MetadataResult, ParamWarning
from imaged.engine.orient import swaps_axes
from imaged.errors import ImageError

EXIF_WARNING = ParamWarning("exif", "true", "invalid EXIF data ignored")
# Largest decoded image kept in memory for the pixel passes (a 48 MP RGB photo takes 138 MiB).
DECODE_IN_MEMORY = 160 * 1024 * 1024


def _field(image: pyvips.Image, name: str) -> Any:
    """A libvips metadata item, or None when it is absent or unreadable."""
    if not image.get_typeof(name):
        return None
    try:
        return image.get(name)
    except (pyvips.Error, TypeError, ValueError):
        return None


def _int_field(image: pyvips.Image, name: str) -> int | None:
    value = _field(image, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if math.isfinite(value) else None


def _half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _background(values: Any) -> dict[str, Any] | None:
    if not isinstance(values, list) or not values:
        return None
    if len(values) == 3:
        return {"r": values[0], "g": values[1], "b": values[2]}
    return {"gray": _half_up(values[0] * 100 / 255)}


def base_fields(image: pyvips.Image, input_format: str, size: int) -> dict[str, Any]:
    """Everything the header tells, in the spec's key order (absent keys omitted)."""
    orient = orientation(image)
    width, height = image.width, image.height
    if swaps_axes(orient):
        width, height = height, width
    fields: dict[str, Any] = {
        "format": input_format,
        "width": width,
        "height": height,
        "size": size,
        "space": image.interpretation,
        "channels": image.bands,
        "depth": image.format,
    }
    if image.xres > 1:
        fields["density"] = _half_up(image.xres * 25.4)
    unit = _field(image, "resolution-unit")
    if isinstance(unit, str):
        fields["resolutionUnit"] = "inch" if unit == "in" else unit
    chroma = _field(image, "jpeg-chroma-subsample")
    if isinstance(chroma, str):
        fields["chromaSubsampling"] = chroma
    fields["isProgressive"] = _int_field(image, "interlaced") == 1
    fields["isPalette"] = bool(_int_field(image, "palette"))
    optional = {
        "bitsPerSample": (_int_field(image, "bits-per-sample"), 1),
        "pages": (_int_field(image, "n-pages"), 1),
        "pageHeight": (_int_field(image, "page-height"), 1),
        "loop": (_int_field(image, "loop"), 0),
    }
    for key, (value, minimum) in optional.items():
        if value is not None and value >= minimum:
            fields[key] = value
    delay = _field(image, "delay")
    if isinstance(delay, list) and delay:
        fields["delay"] = [int(d) for d in delay]
    background = _background(_field(image, "background"))
    if background is not None:
        fields["background"] = background
    if orient > 0:
        fields["orientation"] = orient
    fields["hasProfile"] = has_profile(image)
    fields["hasAlpha"] = bool(image.hasalpha())
    return fields


def _exif(image: pyvips.Image) -> tuple[dict[str, Any] | None, bool]:
    """(exif object or None, whether the block was malformed)."""
    block = _field(image, "exif-data")
    if not isinstance(block, bytes):
        return None, False
    try:
        return exif_object(block), False
    except Exception:  # any failure on a malformed block is a warning, never a 400
        return None, True


def extract(
    data: bytes, input_format: str, options: MetadataOptions, limits: Limits
) -> MetadataResult:
    image = load_checked(data, input_format, limits)
    fields = base_fields(image, input_format, len(data))
    warnings: list[ParamWarning] = []
    if options.exif:
        exif, malformed = _exif(image)
        if exif is not None:
            fields["exif"] = exif
        if malformed:
            warnings.append(EXIF_WARNING)
    try:
        if options.needs_pixels:
            _pixel_fields(fields, image, data, input_format, options)
    except pyvips.Error as exc:
        raise image_error(exc) from exc
    except (ValueError, ArithmeticError) as exc:
        raise ImageError(str(exc) or "processing failed") from exc
    return MetadataResult(fields, warnings)


def _pixel_fields(
    fields: dict[str, Any],
    image: pyvips.Image,
    data: bytes,
    input_format: str,
    options: MetadataOptions,
) -> None:
    """`stats`, `thumbhash` and `blurhash` from one decode in memory, or one sequential decode
    per pass; both placeholders read the same reduced RGBA pixels."""
    reread: stats.Reread | None = None
    if stats.decoded_bytes(image) <= DECODE_IN_MEMORY:
        decoded = jpegturbo.decode(data, input_format, image)
        image = decoded if decoded is not image else image.copy_memory()
    else:
        reread = functools.partial(load, data, input_format)
    if options.stats:
        fields["stats"] = stats.compute(image, reread)
        if reread is not None:
            image = reread()
    if options.thumbhash or options.blurhash:
        width, height, pixels = thumbhash.rgba_pixels(image, orientation(image))
        if options.thumbhash:
            fields["thumbhash"] = thumbhash.of_pixels(width, height, pixels)
        if options.blurhash:
            fields["blurhash"] = blurhash.of_rgba(pixels)
