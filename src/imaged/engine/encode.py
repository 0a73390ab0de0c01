"""Encoding the final 8-bit sRGB image: the per-format, per-preset encoder tables of
transform.md ("Encoder settings"), raw pixel output, and the per-format size limits.

All metadata is stripped (`keep=none`); the saver casts to 8 bits and flattens alpha where
the format has none (JPEG: onto black).
"""

from __future__ import annotations

import functools
from typing import Any

import pyvips

from imaged.engine.animation import frame_height
from imaged.engine.formats import unsupported
from imaged.engine.load import image_error
from imaged.engine.options import TransformOptions
from imaged.errors import ImageError

_PRESET_INDEX = {"default": 0, "quality": 1, "size": 2}

# Largest width/height each format can store; beyond it → `too large for the <X> format`.
MAX_SIDE = {"webp": 16383, "avif": 16384, "heic": 16384, "jpeg": 65535, "gif": 65535}
_FORMAT_NAMES = {"webp": "WebP", "avif": "HEIF", "heic": "HEIF", "jpeg": "JPEG", "gif": "GIF"}


def check_size(fmt: str, width: int, height: int) -> None:
    limit = MAX_SIDE.get(fmt)
    if limit is not None and (width > limit or height > limit):
        raise ImageError(f"Processed image is too large for the {_FORMAT_NAMES[fmt]} format")


def _pick(options: TransformOptions, values: tuple[Any, Any, Any]) -> Any:
    return values[_PRESET_INDEX.get(options.preset, 0)]


def jpeg_options(o: TransformOptions) -> dict[str, Any]:
    size = o.preset == "size"
    return {
        "Q": _either(o.quality, _pick(o, (75, 90, 70))),
        "interlace": True if size else _either(o.progressive, _pick(o, (True, False, True))),
        "subsample_mode": _pick(o, ("on", "off", "on")),
        "optimize_coding": _pick(o, (True, False, True)),
        "trellis_quant": size,
        "overshoot_deringing": size,
        "optimize_scans": size,
        "quant_table": 3 if size else 0,
    }


def png_options(o: TransformOptions) -> dict[str, Any]:
    palette = o.preset == "size"
    kwargs: dict[str, Any] = {
        "compression": _pick(o, (4, 7, 9)),
        "filter": 0xF8,  # VIPS_FOREIGN_PNG_FILTER_ALL: adaptive
        "interlace": _either(o.progressive, False),
        "palette": palette,
        "effort": 7,
        "bitdepth": 8,
    }
    if palette:
        kwargs.update(Q=_either(o.quality, 100), dither=1.0)
    return kwargs


def webp_options(o: TransformOptions) -> dict[str, Any]:
    return {
        "Q": _either(o.quality, _pick(o, (75, 88, 70))),
        "effort": _either(o.effort, _pick(o, (2, 5, 5))),
        "lossless": _either(o.lossless, False),
        "smart_subsample": True,
        "smart_deblock": _pick(o, (False, True, False)),
        "alpha_q": _pick(o, (100, 100, 80)),
        "near_lossless": False,
        "min_size": False,
        "mixed": False,
        "exact": False,
        "preset": "default",
    }


@functools.cache
def heif_tune_supported(compression: str) -> bool:
    """Whether this libvips/libheif build takes `tune=auto` for the codec (probed once:
    older libheif plugins and the HEVC encoder reject it, which would fail every save)."""
    probe = pyvips.Image.black(16, 16, bands=3)
    try:
        probe.heifsave_buffer(compression=compression, tune="auto", effort=0, keep="none")
    except pyvips.Error:
        return False
    return True


def heif_options(o: TransformOptions) -> dict[str, Any]:
    lossless = _either(o.lossless, False)
    compression = "av1" if o.format == "avif" else "hevc"
    kwargs = {
        "compression": compression,
        "Q": _either(o.quality, _pick(o, (45, 60, 40))),
        "effort": _either(o.effort, _pick(o, (2, 6, 6))),
        "subsample_mode": "off" if lossless else _pick(o, ("on", "off", "on")),
        "lossless": lossless,
        "bitdepth": 8,
    }
    if heif_tune_supported(compression):
        kwargs["tune"] = "auto"
    return kwargs


def jxl_distance(quality: int) -> float:
    if quality >= 30:
        return 0.1 + (100 - quality) * 0.09
    return 53 / 3000 * quality * quality - 23 / 20 * quality + 25


def jxl_options(o: TransformOptions) -> dict[str, Any]:
    return {
        "distance": jxl_distance(_either(o.quality, _pick(o, (75, 90, 70)))),
        "tier": _pick(o, (2, 0, 0)),
        "effort": _either(o.effort, _pick(o, (3, 7, 7))),
        "lossless": _either(o.lossless, False),
    }


def tiff_options(o: TransformOptions) -> dict[str, Any]:
    return {
        "compression": _pick(o, ("lzw", "lzw", "jpeg")),
        "predictor": "horizontal",
        "Q": _either(o.quality, 80),
        "tile": False,
        "pyramid": False,
        "bigtiff": False,
        "xres": 1.0,
        "yres": 1.0,
        "resunit": "inch",
    }


def gif_options(o: TransformOptions) -> dict[str, Any]:
    return {
        "effort": 4,
        "bitdepth": 8,
        "dither": 1.0,
        "reuse": True,
        "interlace": False,
        "interframe_maxerror": 0.0,
        "interpalette_maxerror": 3.0,
    }


_SAVERS = {
    "jpeg": ("jpegsave_buffer", jpeg_options),
    "png": ("pngsave_buffer", png_options),
    "webp": ("webpsave_buffer", webp_options),
    "avif": ("heifsave_buffer", heif_options),
    "heic": ("heifsave_buffer", heif_options),
    "jxl": ("jxlsave_buffer", jxl_options),
    "tiff": ("tiffsave_buffer", tiff_options),
    "gif": ("gifsave_buffer", gif_options),
}


def save_options(options: TransformOptions) -> tuple[str, dict[str, Any]]:
    """The libvips saver and its arguments for `options.format` and preset."""
    try:
        saver, build = _SAVERS[options.format]
    except KeyError:
        raise unsupported("encoding", options.format) from None
    return saver, build(options)


def _either(value: Any, default: Any) -> Any:
    return default if value is None else value


def encode(image: pyvips.Image, options: TransformOptions) -> bytes:
    """Encoded bytes of the final image (already 8-bit sRGB, possibly with alpha); an
    animation's frames are stacked (`page-height`), and the size limits apply per frame."""
    check_size(options.format, image.width, frame_height(image))
    try:
        if options.format == "raw":
            if options.greyscale:
                image = image.extract_band(0)
            return bytes(image.write_to_memory())
        saver, kwargs = save_options(options)
        data: bytes = pyvips.Operation.call(saver, image, keep="none", **kwargs)
        return data
    except pyvips.Error as exc:
        raise image_error(exc) from exc
