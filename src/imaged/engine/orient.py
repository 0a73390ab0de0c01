"""EXIF orientation applied geometrically (transform.md, processing step 10)."""

from __future__ import annotations

import pyvips

_ROTATIONS = {6: "d90", 5: "d90", 3: "d180", 4: "d180", 8: "d270", 7: "d270"}
_FLIPPED = {2, 4, 5, 7}


def swaps_axes(orientation: int) -> bool:
    """Orientations ≥ 5 transpose width and height (also outside 1–8, spec QUIRK)."""
    return orientation >= 5


def apply_orientation(image: pyvips.Image, orientation: int) -> pyvips.Image:
    """Rotate clockwise, then mirror left↔right, so the image displays upright."""
    angle = _ROTATIONS.get(orientation)
    if angle is not None:
        image = image.rot(angle)
    if orientation in _FLIPPED:
        image = image.fliphor()
    return image


def drop_orientation(image: pyvips.Image) -> pyvips.Image:
    """Remove the tag so nothing downstream (or an encoder) applies it a second time."""
    if image.get_typeof("orientation") == 0:
        return image
    image = image.copy()
    image.remove("orientation")
    return image
