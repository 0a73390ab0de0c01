"""Colour management to sRGB (transform.md, processing steps 6 and 15)."""

from __future__ import annotations

import pyvips

# libvips band formats that hold 16 bits per sample (`image.format`).
SIXTEEN_BIT_FORMATS = frozenset({"ushort", "short"})
# libvips interpretations of 16-bit images (`image.interpretation`): their alpha is 65535.
SIXTEEN_BIT_INTERPRETATIONS = frozenset({"rgb16", "grey16"})


def has_profile(image: pyvips.Image) -> bool:
    return bool(image.get_typeof("icc-profile-data"))


def import_to_srgb(image: pyvips.Image) -> pyvips.Image:
    """Embedded ICC profile → sRGB (perceptual, keeping 8/16-bit depth); a broken profile is
    ignored; CMYK without a usable profile goes through libvips' generic CMYK profile."""
    interpretation = image.interpretation
    depth = 16 if image.format in SIXTEEN_BIT_FORMATS else 8
    if has_profile(image) and interpretation not in ("labs", "grey16"):
        try:
            return image.icc_transform("srgb", embedded=True, intent="perceptual", depth=depth)
        except pyvips.Error:
            pass
    if interpretation == "cmyk":
        return image.icc_transform("srgb", input_profile="cmyk", intent="perceptual", depth=depth)
    return image


def to_srgb8(image: pyvips.Image) -> pyvips.Image:
    """Final step: 8-bit sRGB (alpha kept), whatever the input space was."""
    if image.format in SIXTEEN_BIT_FORMATS:
        image = image.cast("ushort")
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image
