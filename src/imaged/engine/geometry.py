"""Pure resize/crop/embed arithmetic of transform.md ("Resize semantics", "Gravity",
"Shrink-on-load"). No libvips here, so every rule is unit-testable in isolation."""

from __future__ import annotations

CENTRE = "centre"

# `position` value → gravity (compass point, centre, or a smart-crop strategy).
GRAVITIES = {
    "center": CENTRE,
    "centre": CENTRE,
    "top": "north",
    "north": "north",
    "right": "east",
    "east": "east",
    "bottom": "south",
    "south": "south",
    "left": "west",
    "west": "west",
    "right top": "northeast",
    "northeast": "northeast",
    "right bottom": "southeast",
    "southeast": "southeast",
    "left bottom": "southwest",
    "southwest": "southwest",
    "left top": "northwest",
    "northwest": "northwest",
    "entropy": "entropy",
    "attention": "attention",
}
SMART_CROPS = frozenset({"entropy", "attention"})
_WEST = frozenset({"west", "northwest", "southwest"})
_EAST = frozenset({"east", "northeast", "southeast"})
_NORTH = frozenset({"north", "northeast", "northwest"})
_SOUTH = frozenset({"south", "southeast", "southwest"})


def gravity(position: str) -> str:
    return GRAVITIES.get(position, CENTRE)


def _half(n: int) -> int:
    """Integer division by two truncating toward zero (the spec's arithmetic)."""
    return n // 2 if n >= 0 else -(-n // 2)


def resolve_shrink(
    width: int, height: int, target_width: int | None, target_height: int | None, fit: str
) -> tuple[float, float]:
    """Scale-down factors (hs, vs) for a `width`×`height` image and the requested size
    (already swapped for a 90°/270° orientation); never < 1 (no enlargement), never above
    the image size (so no axis reaches 0)."""
    hs = vs = 1.0
    if target_width and target_height:
        hs = width / target_width
        vs = height / target_height
        if fit in ("cover", "outside"):
            hs = vs = min(hs, vs)
        elif fit in ("contain", "inside"):
            hs = vs = max(hs, vs)
    elif target_width:
        hs = width / target_width
        vs = 1.0 if fit == "fill" else hs
    elif target_height:
        vs = height / target_height
        hs = 1.0 if fit == "fill" else vs
    hs = min(max(hs, 1.0), float(width))
    vs = min(max(vs, 1.0), float(height))
    return hs, vs


def jpeg_shrink(shrink: float) -> int:
    """libjpeg's shrink-on-load factor (1, 2, 4 or 8) for an overall scale-down `shrink`."""
    factor = 1
    for candidate in (8, 4, 2):
        if shrink >= candidate:
            factor = candidate
            break
    if factor > 1 and int(shrink) == factor:
        factor //= 2
    return factor


def cover_size(width: int, height: int, target_width: int, target_height: int) -> tuple[int, int]:
    """The crop size of `cover`: the target, reduced to at most the image per axis."""
    return min(target_width, width), min(target_height, height)


def contain_size(width: int, height: int, target_width: int, target_height: int) -> tuple[int, int]:
    """The canvas of `contain`: the target, enlarged to at least the image per axis."""
    return max(target_width, width), max(target_height, height)


def crop_offsets(
    gravity_name: str, in_width: int, in_height: int, out_width: int, out_height: int
) -> tuple[int, int]:
    """Top-left of an `out` crop from an `in` image at the gravity."""
    dx, dy = in_width - out_width, in_height - out_height
    x = 0 if gravity_name in _WEST else dx if gravity_name in _EAST else _half(dx + 1)
    y = 0 if gravity_name in _NORTH else dy if gravity_name in _SOUTH else _half(dy + 1)
    return x, y


def embed_offsets(
    gravity_name: str, in_width: int, in_height: int, out_width: int, out_height: int
) -> tuple[int, int]:
    """Where an `in` image goes on an `out` canvas at the gravity."""
    dx, dy = out_width - in_width, out_height - in_height
    x = 0 if gravity_name in _WEST else dx if gravity_name in _EAST else _half(dx)
    y = 0 if gravity_name in _NORTH else dy if gravity_name in _SOUTH else _half(dy)
    return x, y
