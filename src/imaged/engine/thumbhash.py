"""ThumbHash (metadata.md, "ThumbHash"): the reference encoder v0.1.1, vectorised with numpy.

`encode` reproduces `rgbaToThumbHash` bit for bit: every per-pixel expression is evaluated
with the same IEEE operations in the same order, and each DCT sum is accumulated
left-to-right in the reference's loop order (`cumsum`, not numpy's pairwise `sum`), so
rounding boundaries fall exactly where they do in JavaScript.
`rgba_pixels` prepares the ≤ 100×100 RGBA input from an already decoded image (BlurHash reads
the same pixels, `engine/blurhash.py`).
"""

from __future__ import annotations

import base64
import math

import numpy as np
import numpy.typing as npt
import pyvips

from imaged.engine.colour import import_to_srgb, to_srgb8
from imaged.engine.orient import apply_orientation, swaps_axes

MAX_SIDE = 100

Floats = npt.NDArray[np.float64]


def _js_round(value: float) -> int:
    """JavaScript Math.round: nearest integer, ties toward +infinity."""
    floor = math.floor(value)
    return int(floor + 1 if value - floor >= 0.5 else floor)


def _sequential_sum(values: Floats) -> Floats:
    """Row sums accumulated strictly left to right (the reference's `f += …` loop)."""
    return np.cumsum(values, axis=-1)[..., -1]


def _encode_channel(
    channel: Floats, nx: int, ny: int, w: int, h: int
) -> tuple[float, list[float], float]:
    coefficients = [(cx, cy) for cy in range(ny) for cx in range(nx) if cx * ny < nx * (ny - cy)]
    fx = np.array(
        [[math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)] for cx, _ in coefficients]
    )
    fy = np.array(
        [[math.cos(math.pi / h * cy * (y + 0.5)) for y in range(h)] for _, cy in coefficients]
    )
    # (channel[x + y*w] * fx[x]) * fy, for every coefficient, in y-major order.
    terms = (channel[None, :, :] * fx[:, None, :]) * fy[:, :, None]
    sums = _sequential_sum(terms.reshape(len(coefficients), w * h)) / (w * h)
    dc = float(sums[0])
    ac = [float(f) for f in sums[1:]]
    scale = 0.0
    for f in ac:
        scale = max(scale, abs(f))
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


def encode(w: int, h: int, rgba: npt.NDArray[np.uint8]) -> bytes:
    """`rgbaToThumbHash(w, h, rgba)`: `rgba` has h×w×4 bytes; w, h ≤ 100."""
    if w > MAX_SIDE or h > MAX_SIDE:
        raise ValueError(f"{w}x{h} doesn't fit in 100x100")
    pixels = np.asarray(rgba, dtype=np.float64).reshape(h, w, 4)
    red, green, blue, alpha8 = (pixels[:, :, i] for i in range(4))
    alpha = alpha8 / 255
    weight = alpha / 255
    avg_r = float(_sequential_sum((weight * red).ravel()))
    avg_g = float(_sequential_sum((weight * green).ravel()))
    avg_b = float(_sequential_sum((weight * blue).ravel()))
    avg_a = float(_sequential_sum(alpha.ravel()))
    if avg_a:
        avg_r /= avg_a
        avg_g /= avg_a
        avg_b /= avg_a

    has_alpha = avg_a < w * h
    l_limit = 5 if has_alpha else 7
    lx = max(1, _js_round(l_limit * w / max(w, h)))
    ly = max(1, _js_round(l_limit * h / max(w, h)))

    # Composite atop the average colour, then RGB → LPQ.
    r = avg_r * (1 - alpha) + weight * red
    g = avg_g * (1 - alpha) + weight * green
    b = avg_b * (1 - alpha) + weight * blue
    lum = (r + g + b) / 3
    p = (r + g) / 2 - b
    q = r - g

    l_dc, l_ac, l_scale = _encode_channel(lum, max(3, lx), max(3, ly), w, h)
    p_dc, p_ac, p_scale = _encode_channel(p, 3, 3, w, h)
    q_dc, q_ac, q_scale = _encode_channel(q, 3, 3, w, h)
    channels = [l_ac, p_ac, q_ac]
    a_dc = a_scale = 0.0
    if has_alpha:
        a_dc, a_ac, a_scale = _encode_channel(alpha, 5, 5, w, h)
        channels.append(a_ac)

    landscape = w > h
    header24 = (
        _js_round(63 * l_dc)
        | (_js_round(31.5 + 31.5 * p_dc) << 6)
        | (_js_round(31.5 + 31.5 * q_dc) << 12)
        | (_js_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if landscape else lx)
        | (_js_round(63 * p_scale) << 3)
        | (_js_round(63 * q_scale) << 9)
        | (int(landscape) << 15)
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    if has_alpha:
        out.append(_js_round(15 * a_dc) | (_js_round(15 * a_scale) << 4))
    start = len(out)
    index = 0
    for ac in channels:
        for f in ac:
            slot = start + (index >> 1)
            if slot == len(out):
                out.append(0)
            out[slot] |= _js_round(15 * f) << ((index & 1) << 2)
            index += 1
    return bytes(v & 0xFF for v in out)


def to_base64(hash_bytes: bytes) -> str:
    return base64.b64encode(hash_bytes).decode("ascii")


def fit_inside(width: int, height: int, side: int = MAX_SIDE) -> tuple[int, int]:
    """`fit=inside` of `side`×`side` without enlargement (the transform's arithmetic)."""
    if width <= side and height <= side:
        return width, height
    if width > height:
        return side, max(1, _js_round(height / (width / side)))
    return max(1, _js_round(width / (height / side))), side


def rgba_pixels(image: pyvips.Image, orientation: int) -> tuple[int, int, npt.NDArray[np.uint8]]:
    """The upright, sRGB, ≤ 100×100 RGBA pixels of a decoded (stored-orientation) image.

    The nearest-neighbour reduction runs first, so the ICC transform and the rotation only
    touch at most 10 000 pixels; per-pixel colour maps commute with picking pixels, so this
    equals colour-managing first."""
    swap = swaps_axes(orientation)
    upright = (image.height, image.width) if swap else (image.width, image.height)
    target_w, target_h = fit_inside(*upright)
    stored_w, stored_h = (target_h, target_w) if swap else (target_w, target_h)
    if (stored_w, stored_h) != (image.width, image.height):
        image = image.resize(
            stored_w / image.width, vscale=stored_h / image.height, kernel="nearest"
        )
    image = to_srgb8(import_to_srgb(image))
    image = apply_orientation(image, orientation)
    if image.hasalpha():
        image = image.extract_band(0, n=3).bandjoin(image.extract_band(image.bands - 1))
    else:
        image = image.extract_band(0, n=3).bandjoin_const([255])
    data = image.write_to_memory()
    pixels = np.frombuffer(data, dtype=np.uint8).reshape(image.height, image.width, 4)
    return image.width, image.height, pixels


def of_pixels(width: int, height: int, pixels: npt.NDArray[np.uint8]) -> str:
    """The base64 ThumbHash of `rgba_pixels`' result (metadata.md, ThumbHash steps 4–5)."""
    return to_base64(encode(width, height, pixels))
