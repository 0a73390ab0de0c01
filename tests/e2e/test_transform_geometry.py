"""/transform resize, crop and embed geometry over HTTP (transform.md, Resize semantics)."""

from __future__ import annotations

import httpx
import pytest
from tests.transform_support import close, decode, grid, jpeg, ok, pixel, png, size, solid

GREY = [128, 128, 128]
RGBA = [200, 100, 50, 255]


def image_bytes(width: int, height: int, colour: list[int] | None = None) -> bytes:
    return png(solid(width, height, colour or GREY))


@pytest.mark.parametrize(
    ("input_size", "alpha", "query", "expected"),
    [
        ((100, 100), False, "width=50", (50, 50)),
        ((100, 100), False, "width=200", (100, 100)),
        ((100, 100), False, "width=50&height=30", (50, 30)),
        ((100, 100), False, "width=50&height=30&fit=fill", (50, 30)),
        ((100, 80), True, "width=200&height=100&fit=contain", (200, 100)),
        ((100, 80), False, "width=200&height=50", (100, 50)),
        ((100, 80), False, "width=200&fit=contain", (200, 80)),
        ((100, 80), False, "width=50&fit=fill", (50, 80)),
        ((100, 80), False, "width=50&height=50&fit=inside", (50, 40)),
        ((100, 80), False, "width=50&height=50&fit=outside", (63, 50)),
        ((100, 80), False, "width=50&height=50&fit=contain", (50, 50)),
    ],
)
def test_verified_examples(
    client: httpx.Client,
    input_size: tuple[int, int],
    alpha: bool,
    query: str,
    expected: tuple[int, int],
) -> None:
    data = image_bytes(*input_size, RGBA if alpha else None)
    r = ok(client, f"{query}&format=png", data)
    assert size(r) == expected
    assert decode(r).bands == (4 if alpha else 3)


def test_verified_example_orientation_6(client: httpx.Client) -> None:
    data = jpeg(solid(100, 80, GREY), orientation=6)
    r = ok(client, "width=40&format=png", data)
    assert size(r) == (40, 50)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("height=40", (50, 40)),
        ("height=40&fit=fill", (100, 40)),
        ("height=40&fit=inside", (50, 40)),
        ("height=40&fit=contain", (50, 40)),
        ("height=40&fit=outside", (50, 40)),
        ("width=30&height=60&fit=cover", (30, 60)),
        ("width=30&height=60&fit=contain", (30, 60)),
        ("width=30&height=60&fit=fill", (30, 60)),
        ("width=30&height=60&fit=inside", (30, 24)),
        ("width=30&height=60&fit=outside", (75, 60)),
        ("width=300&height=300&fit=inside", (100, 80)),
        ("width=300&height=300&fit=outside", (100, 80)),
        ("width=300&height=300&fit=fill", (100, 80)),
        ("width=300&height=300&fit=cover", (100, 80)),
        ("width=300&height=300&fit=contain", (300, 300)),
        ("width=100&height=80", (100, 80)),
        ("", (100, 80)),
    ],
)
def test_fit_modes(client: httpx.Client, query: str, expected: tuple[int, int]) -> None:
    r = ok(client, f"{query}&format=png", image_bytes(100, 80))
    assert size(r) == expected


def test_dimension_limit_clamps_the_request(client: httpx.Client) -> None:
    r = ok(client, "width=99999&fit=contain&format=png", image_bytes(20, 10))
    assert size(r) == (16384, 10)
    assert r.headers["x-imaged-warnings"] == "width: must be at most 16384"


# Nine distinct colours, one per grid cell (row-major from the north-west).
CELLS = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 255, 0],
    [0, 255, 255],
    [255, 0, 255],
    [255, 255, 255],
    [0, 0, 0],
    [255, 128, 0],
]
ROW = {"north": 0, "south": 2}
COL = {"west": 0, "east": 2}
GRAVITY_OF = {
    "center": "centre",
    "centre": "centre",
    "top": "north",
    "north": "north",
    "right": "east",
    "east": "east",
    "bottom": "south",
    "south": "south",
    "left": "west",
    "west": "west",
    "right%20top": "northeast",
    "northeast": "northeast",
    "right+bottom": "southeast",
    "southeast": "southeast",
    "left%20bottom": "southwest",
    "southwest": "southwest",
    "left+top": "northwest",
    "northwest": "northwest",
}


def _row(gravity: str) -> int:
    return next((r for k, r in ROW.items() if k in gravity), 1)


def _col(gravity: str) -> int:
    return next((c for k, c in COL.items() if k in gravity), 1)


@pytest.fixture(scope="module")
def grid_png() -> bytes:
    return png(grid(300, 300, CELLS))


@pytest.mark.parametrize("position", list(GRAVITY_OF))
def test_cover_crop_gravity(client: httpx.Client, grid_png: bytes, position: str) -> None:
    gravity = GRAVITY_OF[position]
    # 300×300 → 300×100: nothing to resize, a vertical crop picks a row of the grid.
    r = ok(client, f"width=300&height=100&position={position}&format=png", grid_png)
    assert size(r) == (300, 100)
    image = decode(r)
    assert pixel(image, 150, 50) == CELLS[_row(gravity) * 3 + 1]
    assert pixel(image, 10, 10) == CELLS[_row(gravity) * 3]
    # 300×300 → 100×300: a horizontal crop picks a column.
    r = ok(client, f"width=100&height=300&position={position}&format=png", grid_png)
    assert size(r) == (100, 300)
    image = decode(r)
    assert pixel(image, 50, 150) == CELLS[3 + _col(gravity)]
    assert pixel(image, 50, 290) == CELLS[6 + _col(gravity)]


def test_cover_crop_offsets_are_exact(client: httpx.Client) -> None:
    # 7 px wide stripes: columns 0..6 get values 0, 40, …, 240. Crop 7 → 4 wide.
    stripes = solid(1, 3, [0, 0, 0])
    for value in range(40, 280, 40):
        stripes = stripes.join(solid(1, 3, [value, value, value]), "horizontal")
    data = png(stripes)
    expected_left = {"centre": 2, "west": 0, "east": 3}  # centre: (7-4+1)/2 = 2
    for position, gravity in (("center", "centre"), ("left", "west"), ("right", "east")):
        r = ok(client, f"width=4&height=3&position={position}&format=png", data)
        row = [pixel(decode(r), x, 1)[0] for x in range(4)]
        left = expected_left[gravity]
        assert row == [40.0 * (left + i) for i in range(4)], position


@pytest.mark.parametrize("position", list(GRAVITY_OF))
def test_contain_embed_gravity(client: httpx.Client, position: str) -> None:
    gravity = GRAVITY_OF[position]
    data = image_bytes(100, 100, [255, 0, 0])
    # Canvas 300×100: the red square sits west / centre / east, black elsewhere.
    r = ok(client, f"width=300&height=100&fit=contain&position={position}&format=png", data)
    image = decode(r)
    for col in range(3):
        expected = [255.0, 0.0, 0.0] if col == _col(gravity) else [0.0, 0.0, 0.0]
        assert pixel(image, col * 100 + 50, 50) == expected, (gravity, col)
    # Canvas 100×300: north / centre / south.
    r = ok(client, f"width=100&height=300&fit=contain&position={position}&format=png", data)
    image = decode(r)
    for row in range(3):
        expected = [255.0, 0.0, 0.0] if row == _row(gravity) else [0.0, 0.0, 0.0]
        assert pixel(image, 50, row * 100 + 50) == expected, (gravity, row)


def test_contain_padding_is_opaque_black_with_alpha(client: httpx.Client) -> None:
    r = ok(client, "width=200&height=100&fit=contain&format=png", image_bytes(100, 80, RGBA))
    image = decode(r)
    assert image.bands == 4
    assert pixel(image, 0, 0) == [0.0, 0.0, 0.0, 255.0]
    assert pixel(image, 199, 99) == [0.0, 0.0, 0.0, 255.0]
    assert close(pixel(image, 100, 50), RGBA, 2)


def test_contain_centres_with_odd_remainder(client: httpx.Client) -> None:
    # 100×80 → 50×40 on a 50×50 canvas: 5 px bars top and bottom.
    r = ok(client, "width=50&height=50&fit=contain&format=png", image_bytes(100, 80, [255] * 3))
    image = decode(r)
    assert pixel(image, 25, 4) == [0.0] * 3
    assert pixel(image, 25, 5) == [255.0] * 3
    assert pixel(image, 25, 44) == [255.0] * 3
    assert pixel(image, 25, 45) == [0.0] * 3


@pytest.mark.parametrize("strategy", ["entropy", "attention"])
def test_smart_crop_finds_the_interesting_part(client: httpx.Client, strategy: str) -> None:
    # Flat grey on the left two thirds, a busy saturated checkerboard on the right third.
    flat = solid(200, 100, GREY)
    busy = grid(100, 100, CELLS)
    data = png(flat.join(busy, "horizontal"))
    r = ok(client, f"width=100&height=100&position={strategy}&format=png", data)
    assert size(r) == (100, 100)
    image = decode(r)
    assert image.deviate() > 40  # the crop holds the detail, not the flat grey
    # With alpha (premultiplied smart crop) the result is the same region.
    rgba = png(flat.join(busy, "horizontal").bandjoin(255))
    r = ok(client, f"width=100&height=100&position={strategy}&format=png&blur=1", rgba)
    assert decode(r).extract_band(0, n=3).deviate() > 40


def test_smart_position_acts_as_centre_for_contain(client: httpx.Client) -> None:
    data = image_bytes(100, 100, [255, 0, 0])
    r = ok(client, "width=300&height=100&fit=contain&position=attention&format=png", data)
    image = decode(r)
    assert pixel(image, 150, 50) == [255.0, 0.0, 0.0]
    assert pixel(image, 50, 50) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "kernel",
    ["nearest", "linear", "cubic", "mitchell", "lanczos2", "lanczos3", "mks2013", "mks2021"],
)
def test_every_kernel(client: httpx.Client, grid_png: bytes, kernel: str) -> None:
    r = ok(client, f"width=100&kernel={kernel}&format=png", grid_png)
    assert size(r) == (100, 100)
    assert "x-imaged-warnings" not in r.headers


def test_nearest_kernel_only_picks_existing_colours(client: httpx.Client, grid_png: bytes) -> None:
    nearest = decode(ok(client, "width=70&kernel=nearest&format=png", grid_png))
    colours = {tuple(pixel(nearest, x, y)) for x in range(0, 70, 3) for y in range(0, 70, 3)}
    assert colours <= {tuple(float(v) for v in c) for c in CELLS}
    lanczos = decode(ok(client, "width=70&format=png", grid_png))
    assert (lanczos - nearest).abs().max() > 0


def test_alpha_is_premultiplied_around_resize(client: httpx.Client) -> None:
    # Opaque green beside fully transparent red: no red may bleed into the resized edge.
    left = solid(50, 20, [0, 255, 0, 255])
    right = solid(50, 20, [255, 0, 0, 0])
    data = png(left.join(right, "horizontal"))
    image = decode(ok(client, "width=25&format=png", data))
    for x in range(image.width):
        r, g, _, a = pixel(image, x, 2)
        if a > 0:
            assert r <= 2 and g >= 250, (x, r, g, a)


def test_box_blur_is_3x3_mean(client: httpx.Client) -> None:
    image = solid(9, 9, [0, 0, 0]).draw_rect([255, 255, 255], 4, 4, 1, 1, fill=True)
    r = ok(client, "blur=true&format=png", png(image))
    out = decode(r)
    assert size(r) == (9, 9)
    assert close(pixel(out, 4, 4), [28.3] * 3, 1)
    assert close(pixel(out, 3, 3), [28.3] * 3, 1)
    assert pixel(out, 2, 4) == [0.0] * 3


def test_gaussian_blur_spreads_with_sigma(client: httpx.Client) -> None:
    image = solid(21, 21, [0, 0, 0]).draw_rect([255, 255, 255], 10, 10, 1, 1, fill=True)
    narrow = decode(ok(client, "blur=0.5&format=png", png(image)))
    wide = decode(ok(client, "blur=3&format=png", png(image)))
    assert pixel(narrow, 13, 10)[0] == 0
    assert pixel(wide, 13, 10)[0] > 0
    assert pixel(wide, 10, 10)[0] < pixel(narrow, 10, 10)[0]


def test_blur_is_applied_after_crop_and_keeps_size(client: httpx.Client, grid_png: bytes) -> None:
    r = ok(client, "width=100&height=60&blur=2.5&format=png", grid_png)
    assert size(r) == (100, 60)


def test_greyscale_gives_equal_channels(client: httpx.Client, grid_png: bytes) -> None:
    image = decode(ok(client, "width=60&greyscale=true&format=png", grid_png))
    assert image.bands == 3
    assert (image[0] - image[1]).abs().max() == 0
    assert (image[1] - image[2]).abs().max() == 0
    # with blur too (box and Gaussian) the tone is kept, not darkened
    plain = decode(ok(client, "width=60&greyscale=true&format=png", grid_png)).avg()
    for blur in ("true", "2"):
        blurred = decode(ok(client, f"width=60&greyscale=true&blur={blur}&format=png", grid_png))
        assert abs(blurred.avg() - plain) < 8


def test_greyscale_keeps_alpha(client: httpx.Client) -> None:
    data = png(solid(40, 40, [200, 30, 30, 128]))
    image = decode(ok(client, "greyscale=1&width=20&format=png", data))
    assert image.bands == 4
    r, g, b, a = pixel(image, 10, 10)
    assert r == g == b and abs(a - 128) <= 1


def test_no_enlargement_ever(client: httpx.Client) -> None:
    for fit in ("cover", "fill", "inside", "outside"):
        r = ok(client, f"width=1000&height=900&fit={fit}&format=png", image_bytes(40, 30))
        assert size(r) == (40, 30), fit
