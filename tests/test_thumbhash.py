"""ThumbHash encoder and input preparation (`engine/thumbhash.py`, metadata.md "ThumbHash")."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import pyvips

from imaged.engine import thumbhash


def vector_4x3() -> np.ndarray:
    return np.array(
        [[[60 * x, 100 * y, 200, 255] for x in range(4)] for y in range(3)], dtype=np.uint8
    )


def vector_8x8() -> np.ndarray:
    return np.array(
        [[[255, 0, 0, 255 if x < 4 else 0] for x in range(8)] for _ in range(8)], dtype=np.uint8
    )


@pytest.mark.parametrize(
    ("w", "h", "pixels", "expected"),
    [
        (4, 3, vector_4x3(), "4OQJPZxxd3hwh3iHiIiIh4FwGPeI"),
        (8, 8, vector_8x8(), "1fuDBQBYSJpweI23iCmNkNIIj3WIiHeIiA=="),
        (1, 1, np.array([[[10, 20, 30, 255]]], dtype=np.uint8), "hecJJwQI9wiIh4hwj3CI+AiIcH/494cP"),
    ],
)
def test_reference_vectors(w: int, h: int, pixels: np.ndarray, expected: str) -> None:
    assert thumbhash.to_base64(thumbhash.encode(w, h, pixels)) == expected


def test_larger_than_100_is_refused() -> None:
    with pytest.raises(ValueError, match="101x1 doesn't fit in 100x100"):
        thumbhash.encode(101, 1, np.zeros((1, 101, 4), dtype=np.uint8))


def reference_encode(w: int, h: int, rgba: list[int]) -> bytes:
    """A literal, loop-by-loop port of the reference `rgbaToThumbHash` (the test oracle)."""

    def js_round(x: float) -> int:  # Math.round: ties toward +infinity
        floor = math.floor(x)
        return int(floor + 1 if x - floor >= 0.5 else floor)

    avg_r = avg_g = avg_b = avg_a = 0.0
    for i in range(w * h):
        alpha = rgba[4 * i + 3] / 255
        avg_r += alpha / 255 * rgba[4 * i]
        avg_g += alpha / 255 * rgba[4 * i + 1]
        avg_b += alpha / 255 * rgba[4 * i + 2]
        avg_a += alpha
    if avg_a:
        avg_r /= avg_a
        avg_g /= avg_a
        avg_b /= avg_a
    has_alpha = avg_a < w * h
    l_limit = 5 if has_alpha else 7
    lx = max(1, js_round(l_limit * w / max(w, h)))
    ly = max(1, js_round(l_limit * h / max(w, h)))
    lum, p, q, a = [], [], [], []
    for i in range(w * h):
        alpha = rgba[4 * i + 3] / 255
        r = avg_r * (1 - alpha) + alpha / 255 * rgba[4 * i]
        g = avg_g * (1 - alpha) + alpha / 255 * rgba[4 * i + 1]
        b = avg_b * (1 - alpha) + alpha / 255 * rgba[4 * i + 2]
        lum.append((r + g + b) / 3)
        p.append((r + g) / 2 - b)
        q.append(r - g)
        a.append(alpha)

    def channel(values: list[float], nx: int, ny: int) -> tuple[float, list[float], float]:
        dc, ac, scale = 0.0, [], 0.0
        for cy in range(ny):
            cx = 0
            while cx * ny < nx * (ny - cy):
                f = 0.0
                fx = [math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)]
                for y in range(h):
                    fy = math.cos(math.pi / h * cy * (y + 0.5))
                    for x in range(w):
                        f += values[x + y * w] * fx[x] * fy
                f /= w * h
                if cx or cy:
                    ac.append(f)
                    scale = max(scale, abs(f))
                else:
                    dc = f
                cx += 1
        if scale:
            ac = [0.5 + 0.5 / scale * f for f in ac]
        return dc, ac, scale

    l_dc, l_ac, l_scale = channel(lum, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = channel(p, 3, 3)
    q_dc, q_ac, q_scale = channel(q, 3, 3)
    landscape = w > h
    header24 = (
        js_round(63 * l_dc)
        | (js_round(31.5 + 31.5 * p_dc) << 6)
        | (js_round(31.5 + 31.5 * q_dc) << 12)
        | (js_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if landscape else lx)
        | (js_round(63 * p_scale) << 3)
        | (js_round(63 * q_scale) << 9)
        | (int(landscape) << 15)
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    acs = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = channel(a, 5, 5)
        out.append(js_round(15 * a_dc) | (js_round(15 * a_scale) << 4))
        acs.append(a_ac)
    start, index = len(out), 0
    for ac in acs:
        for f in ac:
            while len(out) <= start + (index >> 1):
                out.append(0)
            out[start + (index >> 1)] |= js_round(15 * f) << ((index & 1) << 2)
            index += 1
    return bytes(v & 255 for v in out)


def test_matches_a_literal_port_of_the_reference_on_random_images() -> None:
    rng = random.Random(7)
    for _ in range(25):
        w, h = rng.randint(1, 23), rng.randint(1, 23)
        transparent = rng.random() < 0.4
        rgba = []
        for _ in range(w * h):
            rgba += [rng.randrange(256) for _ in range(3)]
            rgba.append(rng.randrange(256) if transparent else 255)
        pixels = np.array(rgba, dtype=np.uint8).reshape(h, w, 4)
        assert thumbhash.encode(w, h, pixels) == reference_encode(w, h, rgba), (w, h)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((4032, 3024), (100, 75)),
        ((3024, 4032), (75, 100)),
        ((100, 100), (100, 100)),
        ((150, 150), (100, 100)),
        ((50, 20), (50, 20)),
        ((1000, 1), (100, 1)),
        ((1, 1000), (1, 100)),
        ((101, 3), (100, 3)),
        ((290, 442), (66, 100)),
    ],
)
def test_fit_inside(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert thumbhash.fit_inside(*size) == expected


def marked(width: int, height: int) -> pyvips.Image:
    """Grey image with a red 2×2 mark in the stored top-left corner."""
    base = np.full((height, width, 3), 128, dtype=np.uint8)
    base[:2, :2] = [255, 0, 0]
    return pyvips.Image.new_from_array(base, interpretation="srgb")


@pytest.mark.parametrize(
    ("orientation", "corner"),
    [(1, (0, 0)), (6, (0, -1)), (8, (-1, 0)), (3, (-1, -1)), (5, (0, 0)), (7, (-1, -1))],
)
def test_pixels_are_upright(orientation: int, corner: tuple[int, int]) -> None:
    w, h, pixels = thumbhash.rgba_pixels(marked(40, 20), orientation)
    assert (w, h) == ((20, 40) if orientation >= 5 else (40, 20))
    assert pixels.shape == (h, w, 4)
    assert pixels[corner[0], corner[1]].tolist() == [255, 0, 0, 255]
    assert pixels[h // 2, w // 2].tolist() == [128, 128, 128, 255]


def test_large_images_are_reduced_with_nearest_pixels() -> None:
    w, h, pixels = thumbhash.rgba_pixels(marked(400, 300), 6)
    assert (w, h) == (75, 100)
    # Nearest neighbour picks source pixels: only the two source colours appear.
    colours = {tuple(p) for p in pixels.reshape(-1, 4).tolist()}
    assert colours <= {(128, 128, 128, 255), (255, 0, 0, 255)}


def test_grey_alpha_and_16_bit_sources() -> None:
    grey = pyvips.Image.new_from_array(np.full((3, 5), 77, dtype=np.uint8), interpretation="b-w")
    _, _, pixels = thumbhash.rgba_pixels(grey, 0)
    assert pixels[0, 0].tolist() == [77, 77, 77, 255]
    grey_alpha = grey.bandjoin_const([9]).copy(interpretation="b-w")
    _, _, pixels = thumbhash.rgba_pixels(grey_alpha, 0)
    assert pixels[1, 1].tolist() == [77, 77, 77, 9]
    deep = pyvips.Image.new_from_array(
        np.full((2, 2, 4), [65535, 0, 32896, 65535], dtype=np.uint16), interpretation="rgb16"
    )
    _, _, pixels = thumbhash.rgba_pixels(deep, 0)
    assert pixels[0, 0].tolist() == [255, 0, 128, 255]


def test_of_pixels_equals_the_vector_for_a_lossless_small_image() -> None:
    image = pyvips.Image.new_from_array(vector_4x3(), interpretation="srgb")
    assert thumbhash.of_pixels(*thumbhash.rgba_pixels(image, 0)) == "4OQJPZxxd3hwh3iHiIiIh4FwGPeI"
