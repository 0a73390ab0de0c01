"""BlurHash (openapi.md, "BlurHash"): the woltapp/blurhash encoder, vectorised with numpy.

The input is the ≤ 100×100 RGBA image ThumbHash reads (`thumbhash.rgba_pixels`), so a
request asking for both decodes once; alpha is composited over white into 8-bit RGB first
(the reference encoder takes RGB bytes). The arithmetic is the reference `encode.c`: sRGB →
linear per byte, one cosine-basis sum per component (`normalisation / (w·h)`), the AC
maximum quantised to 83 levels, DC as 24-bit sRGB, each AC as 19³ levels of `signPow(·, ½)`,
all in base 83. The reference sums in single precision; this one sums in double, which
differs only where a value falls within float rounding of a quantisation boundary.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

X_COMPONENTS = 4
Y_COMPONENTS = 3
_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _srgb_to_linear(value: int) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


# Every 8-bit sRGB value in linear light: the per-pixel conversion is one table look-up.
_LINEAR = np.array([_srgb_to_linear(i) for i in range(256)], dtype=np.float64)


def _linear_to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - i)) % 83] for i in range(1, length + 1))


def _quantise_ac(value: float, maximum: float) -> int:
    scaled = value / maximum
    sign_pow = math.copysign(abs(scaled) ** 0.5, scaled)
    return int(max(0.0, min(18.0, math.floor(sign_pow * 9 + 9.5))))


def encode(
    rgb: npt.NDArray[np.uint8], x_components: int = X_COMPONENTS, y_components: int = Y_COMPONENTS
) -> str:
    """The BlurHash of `rgb` (height × width × 3 bytes) with the given component counts."""
    height, width = rgb.shape[0], rgb.shape[1]
    linear = _LINEAR[rgb]  # height × width × 3
    basis_x = np.cos(np.pi * np.outer(np.arange(x_components), np.arange(width)) / width)
    basis_y = np.cos(np.pi * np.outer(np.arange(y_components), np.arange(height)) / height)
    # factors[j, i, c] = Σ_y Σ_x basis_y[j, y] · basis_x[i, x] · linear[y, x, c], as two
    # matrix products (rows first): j × width × 3, then j × 3 × i.
    rows = np.tensordot(basis_y, linear, axes=1)
    factors = np.tensordot(rows, basis_x, axes=([1], [1])).transpose(0, 2, 1) / (width * height)
    factors = factors.reshape(x_components * y_components, 3)
    factors[1:] *= 2  # the reference's normalisation: 1 for DC, 2 for every AC component
    dc, ac = factors[0], factors[1:]

    parts = [_base83(x_components - 1 + (y_components - 1) * 9, 1)]
    if len(ac):
        actual_maximum = float(np.abs(ac).max())
        quantised = int(max(0, min(82, math.floor(actual_maximum * 166 - 0.5))))
        maximum = (quantised + 1) / 166
        parts.append(_base83(quantised, 1))
    else:
        maximum = 1.0
        parts.append(_base83(0, 1))
    r, g, b = (_linear_to_srgb(float(v)) for v in dc)
    parts.append(_base83((r << 16) + (g << 8) + b, 4))
    for component in ac:
        qr, qg, qb = (_quantise_ac(float(v), maximum) for v in component)
        parts.append(_base83(qr * 19 * 19 + qg * 19 + qb, 2))
    return "".join(parts)


def over_white(rgba: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """RGBA → RGB composited over white, rounded half up to bytes: (c·a + 255·(255 − a)) / 255
    in integers (an opaque image is unchanged)."""
    colour = rgba[..., :3]
    alpha = rgba[..., 3:4]
    if alpha.min() == 255:
        return np.ascontiguousarray(colour)
    a = alpha.astype(np.uint32)
    blended = (colour * a + 255 * (255 - a) + 127) // 255
    return blended.astype(np.uint8)


def of_rgba(rgba: npt.NDArray[np.uint8]) -> str:
    """The 4 × 3 BlurHash of ThumbHash's reduced RGBA pixels (height × width × 4)."""
    return encode(over_white(rgba))
