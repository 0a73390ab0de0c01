"""EXIF auto-orientation over HTTP: all eight orientations (transform.md, step 10)."""

from __future__ import annotations

import httpx
import pytest
import pyvips
from tests.transform_support import corpus_bytes, decode, jpeg, ok, pixel, size, solid

WHITE = [255.0, 255.0, 255.0]


@pytest.fixture(scope="module")
def upright(client: httpx.Client) -> pyvips.Image:
    return decode(ok(client, "width=90&format=png", corpus_bytes("orientation/Landscape_1.jpg")))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_corpus_orientations_display_alike(
    client: httpx.Client, upright: pyvips.Image, orientation: int
) -> None:
    data = corpus_bytes(f"orientation/Landscape_{orientation}.jpg")
    r = ok(client, "width=90&format=png", data)
    assert size(r) == (90, 60)
    image = decode(r)
    # Same picture as the upright one (only JPEG/ICC noise), unlike any mirrored version.
    assert (image - upright).abs().avg() < 4
    assert (image.fliphor() - upright).abs().avg() > 30
    assert (image.flipver() - upright).abs().avg() > 30


@pytest.mark.parametrize("orientation", [3, 6, 7])
def test_corpus_orientations_with_cover_crop(client: httpx.Client, orientation: int) -> None:
    data = corpus_bytes(f"orientation/Landscape_{orientation}.jpg")
    r = ok(client, "width=50&height=50&format=png", data)
    assert size(r) == (50, 50)
    r = ok(client, "height=120&format=png", data)
    assert size(r) == (180, 120)
    r = ok(client, "format=png", data)
    assert size(r) == (1800, 1200)


# Where a mark stored in the top-left corner must be displayed (x, y as fractions).
MARK_CORNER = {
    1: (0, 0),
    2: (1, 0),
    3: (1, 1),
    4: (0, 1),
    5: (0, 0),
    6: (1, 0),
    7: (1, 1),
    8: (0, 1),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_stored_top_left_mark_lands_where_expected(client: httpx.Client, orientation: int) -> None:
    stored = solid(100, 80, [0, 0, 0]).draw_rect([255, 255, 255], 0, 0, 30, 30, fill=True)
    r = ok(client, "format=png", jpeg(stored, orientation=orientation))
    width, height = (80, 100) if orientation >= 5 else (100, 80)
    assert size(r) == (width, height)
    image = decode(r)
    corner_x, corner_y = MARK_CORNER[orientation]
    for cx in (0, 1):
        for cy in (0, 1):
            x = 10 if cx == 0 else width - 11
            y = 10 if cy == 0 else height - 11
            value = pixel(image, x, y)
            if (cx, cy) == (corner_x, corner_y):
                assert min(value) > 200, (orientation, cx, cy, value)
            else:
                assert max(value) < 50, (orientation, cx, cy, value)


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_requested_size_refers_to_the_oriented_image(
    client: httpx.Client, orientation: int
) -> None:
    data = jpeg(solid(100, 80, [90, 90, 90]), orientation=orientation)
    assert size(ok(client, "width=40&format=png", data)) == (40, 50)
    assert size(ok(client, "height=50&format=png", data)) == (40, 50)
    assert size(ok(client, "width=40&fit=fill&format=png", data)) == (40, 100)
    assert size(ok(client, "width=60&height=30&format=png", data)) == (60, 30)
    assert size(ok(client, "width=60&height=30&fit=inside&format=png", data)) == (24, 30)


@pytest.mark.parametrize(
    "name", ["jpeg-12mp-xiaomi-mi9t-orient6.jpg", "jpeg-3mp-canon-sx60-orient6.jpg"]
)
def test_camera_orientation_6(client: httpx.Client, name: str) -> None:
    r = ok(client, "width=300", corpus_bytes(name))
    assert size(r) == (300, 400)
    image = decode(r)
    assert "orientation" not in image.get_fields()
    assert "exif-data" not in image.get_fields()
