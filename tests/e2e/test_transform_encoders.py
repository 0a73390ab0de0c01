"""Encoder behaviour that is observable in the output (transform.md, Encoder settings)."""

from __future__ import annotations

import httpx
import pytest
import pyvips
from tests.transform_support import corpus_bytes, decode, ok, pixel, png, size, solid

MIME = {
    "avif": "image/avif",
    "gif": "image/gif",
    "heic": "image/heic",
    "jpeg": "image/jpeg",
    "jxl": "image/jxl",
    "png": "image/png",
    "raw": "application/octet-stream",
    "tiff": "image/tiff",
    "webp": "image/webp",
}
LOADER = {
    "avif": "heifload",
    "heic": "heifload",
    "gif": "gifload",
    "jpeg": "jpegload",
    "jxl": "jxlload",
    "png": "pngload",
    "tiff": "tiffload",
    "webp": "webpload",
}
PHOTO = "jpeg-small-nikon-p6000-gps.jpg"


@pytest.fixture(scope="module")
def encoders(client: httpx.Client) -> list[str]:
    body = client.get("/healthz").json()
    found: list[str] = body["encoders"]
    return found


@pytest.fixture(scope="module")
def photo() -> bytes:
    return corpus_bytes(PHOTO)


@pytest.fixture(scope="module")
def tile() -> pyvips.Image:
    """64×48 crop of a real photo (rich detail) with a varied alpha channel."""
    image = pyvips.Image.new_from_buffer(corpus_bytes(PHOTO), "").crop(200, 200, 64, 48)
    alpha = pyvips.Image.xyz(64, 48)[0].cast("uchar") * 3 + 60
    return image.bandjoin(alpha.cast("uchar")).copy_memory()


def test_every_encoder_produces_its_format(
    client: httpx.Client, encoders: list[str], photo: bytes
) -> None:
    assert {"jpeg", "png", "webp", "gif", "tiff", "raw"} <= set(encoders)
    for fmt in encoders:
        r = ok(client, f"width=80&format={fmt}", photo)
        assert r.headers["content-type"] == MIME[fmt]
        assert size(r) == (80, 60)
        if fmt == "raw":
            assert len(r.content) == 80 * 60 * 3
            continue
        image = decode(r)
        assert image.get("vips-loader").startswith(LOADER[fmt]), fmt


def test_jpeg_progressive_and_subsampling(client: httpx.Client, photo: bytes) -> None:
    def fields(query: str) -> tuple[bool, str]:
        image = decode(ok(client, f"width=100&{query}", photo))
        interlaced = image.get_typeof("interlaced") != 0 and bool(image.get("interlaced"))
        return interlaced, image.get("jpeg-chroma-subsample")

    assert fields("") == (True, "4:2:0")
    assert fields("progressive=false") == (False, "4:2:0")
    assert fields("preset=quality") == (False, "4:4:4")
    assert fields("preset=quality&progressive=true") == (True, "4:4:4")
    assert fields("preset=size") == (True, "4:2:0")
    assert fields("preset=size&progressive=false") == (True, "4:2:0")


def test_jpeg_quality_changes_size(client: httpx.Client, photo: bytes) -> None:
    sizes = [len(ok(client, f"width=200&quality={q}", photo).content) for q in (10, 50, 95)]
    assert sizes[0] < sizes[1] < sizes[2]
    default = len(ok(client, "width=200", photo).content)
    assert len(ok(client, "width=200&quality=75", photo).content) == default


def test_png_interlace_and_palette(client: httpx.Client, photo: bytes) -> None:
    def fields(query: str) -> tuple[bool, bool, int]:
        r = ok(client, f"width=100&format=png&{query}", photo)
        image = decode(r)
        interlaced = image.get_typeof("interlaced") != 0 and bool(image.get("interlaced"))
        palette = image.get_typeof("palette") != 0 and bool(image.get("palette"))
        return interlaced, palette, len(r.content)

    plain = fields("")
    assert plain[:2] == (False, False)
    assert fields("progressive=true")[:2] == (True, False)
    assert fields("progressive=false")[:2] == (False, False)
    small = fields("preset=size")
    assert small[:2] == (False, True) and small[2] < plain[2]
    assert fields("preset=quality")[:2] == (False, False)
    # quality only matters for the palette of preset=size
    assert fields("preset=size&quality=5")[2] < small[2]
    assert fields("quality=5")[2] == plain[2]


@pytest.mark.parametrize("fmt", ["webp", "avif"])
def test_lossless_round_trip_is_exact(
    client: httpx.Client, encoders: list[str], tile: pyvips.Image, fmt: str
) -> None:
    assert fmt in encoders
    for source in (tile.extract_band(0, n=3), tile):
        for preset in ("default", "size"):
            r = ok(client, f"format={fmt}&lossless=true&preset={preset}", png(source))
            image = decode(r)
            assert image.bands == source.bands
            assert (image - source).abs().max() == 0, (fmt, preset, source.bands)


@pytest.mark.parametrize("fmt", ["webp", "avif"])
def test_lossy_quality_changes_size(client: httpx.Client, photo: bytes, fmt: str) -> None:
    low = len(ok(client, f"width=160&format={fmt}&quality=10", photo).content)
    high = len(ok(client, f"width=160&format={fmt}&quality=90", photo).content)
    assert low < high
    lossy = decode(ok(client, f"width=160&format={fmt}", photo))
    reference = decode(ok(client, "width=160&format=png", photo))
    assert 0 < (lossy - reference).abs().avg() < 10


def test_effort_is_accepted_per_format(client: httpx.Client, photo: bytes) -> None:
    for query in ("format=webp&effort=0", "format=webp&effort=6", "format=avif&effort=0",
                  "format=png&effort=1", "format=gif&effort=10"):  # fmt: skip
        r = ok(client, f"width=64&{query}", photo)
        assert "x-imaged-warnings" not in r.headers


def test_gif_and_png_ignore_effort(client: httpx.Client, photo: bytes) -> None:
    for fmt in ("gif", "png"):
        a = ok(client, f"width=64&format={fmt}&effort=1", photo).content
        b = ok(client, f"width=64&format={fmt}&effort=10", photo).content
        assert a == b, fmt


def test_tiff_presets(client: httpx.Client, photo: bytes) -> None:
    lzw = ok(client, "width=200&format=tiff", photo)
    jpeg_compressed = ok(client, "width=200&format=tiff&preset=size", photo)
    assert len(jpeg_compressed.content) < len(lzw.content) / 2
    lzw_image = decode(lzw)
    assert lzw_image.bands == 3
    assert (decode(jpeg_compressed) - lzw_image).abs().avg() < 8
    # LZW is lossless: identical to the PNG rendering of the same request
    assert (lzw_image - decode(ok(client, "width=200&format=png", photo))).abs().max() == 0


def test_gif_output_is_single_frame(client: httpx.Client) -> None:
    for name in ("gif-animated-10f.gif", "webp-animated-10f.webp"):
        for fmt in ("gif", "webp", "png"):
            r = ok(client, f"format={fmt}", corpus_bytes(name))
            assert size(r) == (370, 285)
            image = decode(r)
            n_pages = image.get("n-pages") if image.get_typeof("n-pages") else 1
            assert n_pages == 1, (name, fmt)


def test_raw_is_interleaved_rgb_bytes(client: httpx.Client) -> None:
    image = solid(3, 2, [10, 20, 30]).draw_rect([200, 100, 0], 2, 1, 1, 1, fill=True)
    r = ok(client, "format=raw", png(image))
    assert r.headers["content-type"] == "application/octet-stream"
    assert size(r) == (3, 2)
    assert r.content == bytes([10, 20, 30] * 5 + [200, 100, 0])


def test_raw_keeps_alpha(client: httpx.Client) -> None:
    r = ok(client, "format=raw", png(solid(2, 2, [1, 2, 3, 4])))
    assert r.content == bytes([1, 2, 3, 4] * 4)


def test_raw_greyscale_is_one_byte_per_pixel_without_alpha(client: httpx.Client) -> None:
    r = ok(client, "format=raw&greyscale=true", png(solid(4, 3, [90, 90, 90, 128])))
    assert size(r) == (4, 3)
    assert len(r.content) == 12 and len(set(r.content)) == 1
    assert abs(r.content[0] - 90) <= 3  # the 8-bit gamma round trip may move it slightly
    rgb = ok(client, "format=raw&greyscale=true&width=2", corpus_bytes(PHOTO))
    assert len(rgb.content) == int(rgb.headers["x-image-width"]) * int(
        rgb.headers["x-image-height"]
    )


def test_raw_matches_png_pixels(client: httpx.Client, photo: bytes) -> None:
    raw = ok(client, "width=50&format=raw", photo)
    width, height = size(raw)
    from_raw = pyvips.Image.new_from_memory(raw.content, width, height, 3, "uchar")
    from_png = decode(ok(client, "width=50&format=png", photo))
    assert (from_raw - from_png).abs().max() == 0


def test_alpha_kept_by_formats_with_alpha(
    client: httpx.Client, encoders: list[str], tile: pyvips.Image
) -> None:
    data = png(tile)
    for fmt in ("png", "webp", "avif", "tiff", "gif"):
        if fmt not in encoders:
            continue
        image = decode(ok(client, f"format={fmt}", data))
        assert image.hasalpha(), fmt
    assert decode(ok(client, "format=jpeg", data)).bands == 3


def test_gif_transparency(client: httpx.Client) -> None:
    half = solid(20, 20, [255, 0, 0, 255]).join(solid(20, 20, [0, 0, 0, 0]), "horizontal")
    image = decode(ok(client, "format=gif", png(half)))
    assert pixel(image, 5, 5)[3] == 255 and pixel(image, 35, 5)[3] == 0
