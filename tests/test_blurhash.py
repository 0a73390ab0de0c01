"""BlurHash encoder (`engine/blurhash.py`, openapi.md "BlurHash") against the reference C
encoder and decoder of woltapp/blurhash (the `blurhash-python` package, test extra only)."""

from __future__ import annotations

import blurhash as reference
import numpy as np
import pytest
import pyvips
from PIL import Image

from imaged.engine import blurhash, thumbhash
from tests.serverproc import CORPUS

# blurhash-python reads pixels with an API Pillow 14 will remove; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")
rng = np.random.default_rng(20261203)


def reference_hash(rgb: np.ndarray) -> str:
    return reference.encode(Image.fromarray(rgb, "RGB"), 4, 3)


def mean_colour(rgb: np.ndarray) -> np.ndarray:
    """The mean colour of 8-bit sRGB pixels: the mean of their light (linear values), back
    in sRGB levels — what BlurHash's DC component is. (The plain mean of sRGB levels of a
    photo with contrast is darker by 10 levels or more, for any encoder.)"""
    linear = blurhash._LINEAR[rgb].reshape(-1, 3).mean(axis=0)
    return np.array([blurhash._linear_to_srgb(float(v)) for v in linear])


def decoded(hash_text: str, width: int, height: int) -> np.ndarray:
    """The reference decoder's image of `hash_text`."""
    pixels = np.array(reference.decode(hash_text, width, height), dtype=np.uint8)
    return pixels.reshape(height, width, 3)


def random_images() -> list[np.ndarray]:
    images = []
    for i in range(60):
        w, h = (int(v) for v in rng.integers(1, 101, 2))
        if i % 3 == 0:
            images.append(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        elif i % 3 == 1:
            y, x = np.mgrid[0:h, 0:w]
            layers = [x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), (x + y) % 256]
            images.append(np.stack(layers, axis=-1).astype(np.uint8))
        else:
            images.append(np.full((h, w, 3), rng.integers(0, 256, 3), dtype=np.uint8))
    return images


def corpus_pixels() -> list[tuple[str, np.ndarray]]:
    """ThumbHash's reduced RGBA of real images, composited over white: BlurHash's input."""
    found = []
    for name in ("jpeg-small-nikon-p6000-gps.jpg", "webp-alpha.webp", "png-palette-8bit.png",
                 "jpeg-cmyk-swop-canon300d.jpg", "gif-animated-10f.gif"):  # fmt: skip
        image = pyvips.Image.new_from_file(str(CORPUS / name))
        _, _, rgba = thumbhash.rgba_pixels(image, 0)
        found.append((name, blurhash.over_white(rgba)))
    return found


@pytest.mark.parametrize("rgb", random_images(), ids=lambda a: f"{a.shape[1]}x{a.shape[0]}")
def test_equals_the_reference_encoder(rgb: np.ndarray) -> None:
    assert blurhash.encode(rgb) == reference_hash(rgb)


@pytest.mark.parametrize(
    ("name", "rgb"), corpus_pixels(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_real_images_equal_the_reference_and_keep_their_mean_colour(
    name: str, rgb: np.ndarray
) -> None:
    ours = blurhash.encode(rgb)
    assert ours == reference_hash(rgb)
    height, width = rgb.shape[:2]
    # The decoded placeholder's mean colour is the source's, within 6 levels.
    difference = np.abs(mean_colour(decoded(ours, width, height)) - mean_colour(rgb))
    assert difference.max() <= 6, difference


def test_layout_is_4_by_3_components() -> None:
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    text = blurhash.encode(rgb)
    assert len(text) == 1 + 1 + 4 + 11 * 2  # size flag, maximum, DC, 11 AC components
    assert text[0] == "L"  # size flag (4 - 1) + (3 - 1) × 9 = 21 in base 83
    assert reference.is_valid_blurhash(text)
    assert blurhash.encode(rgb, 1, 1) == reference.encode(Image.fromarray(rgb, "RGB"), 1, 1)


def test_a_flat_image_decodes_to_its_colour() -> None:
    rgb = np.full((12, 20, 3), (200, 30, 90), dtype=np.uint8)
    text = blurhash.encode(rgb)
    assert text == reference_hash(rgb)
    # (The reference's basis cos(π·i·x/w) is not orthogonal to a constant, so even a flat
    # image has AC energy and decodes as a slight gradient.)
    assert np.abs(mean_colour(decoded(text, 20, 12)) - (200, 30, 90)).max() <= 6


def test_alpha_is_composited_over_white() -> None:
    rgba = np.zeros((4, 6, 4), dtype=np.uint8)
    rgba[..., :3] = (0, 0, 255)
    assert blurhash.over_white(rgba).tolist() == np.full((4, 6, 3), 255).tolist()
    rgba[..., 3] = 128  # half blue over white: (127, 127, 255) rounded half up
    assert blurhash.over_white(rgba)[0, 0].tolist() == [127, 127, 255]
    rgba[..., 3] = 255
    assert blurhash.over_white(rgba)[0, 0].tolist() == [0, 0, 255]
    transparent = np.zeros((5, 5, 4), dtype=np.uint8)
    white = np.full((5, 5, 3), 255, dtype=np.uint8)
    assert blurhash.of_rgba(transparent) == blurhash.encode(white) == reference_hash(white)


def test_one_pixel() -> None:
    rgb = np.array([[[10, 20, 30]]], dtype=np.uint8)
    assert blurhash.encode(rgb) == reference_hash(rgb)
