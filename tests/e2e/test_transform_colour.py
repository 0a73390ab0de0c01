"""Colour management over HTTP: ICC profiles, CMYK and 16-bit inputs become 8-bit sRGB
(transform.md, steps 6 and 15); outputs carry no metadata (step 16)."""

from __future__ import annotations

import httpx
import pytest
import pyvips
from tests.transform_support import corpus_bytes, decode, ok, pixel, png, size, solid


def reference_srgb(name: str) -> pyvips.Image:
    """The input converted to sRGB with its embedded profile, computed here with libvips."""
    source = pyvips.Image.new_from_buffer(corpus_bytes(name), "")
    converted = source.icc_transform("srgb", embedded=True, intent="perceptual", depth=8)
    return converted.colourspace("srgb").cast("uchar")


def test_cmyk_jpeg_becomes_srgb(client: httpx.Client) -> None:
    name = "jpeg-cmyk-swop-canon300d.jpg"
    image = decode(ok(client, "format=png", corpus_bytes(name)))
    assert image.bands == 3 and image.interpretation == "srgb"
    assert (image.width, image.height) == (500, 333)
    assert (image - reference_srgb(name)).abs().avg() < 1.5
    # Reading the CMYK bands as if they were RGB would be wildly different.
    naive = pyvips.Image.new_from_buffer(corpus_bytes(name), "").extract_band(0, n=3)
    assert (image - naive.cast("uchar")).abs().avg() > 40


def test_cmyk_jpeg_to_jpeg_resized(client: httpx.Client) -> None:
    r = ok(client, "width=100", corpus_bytes("jpeg-cmyk-swop-canon300d.jpg"))
    image = decode(r)
    # shrink-on-load 4 gives 125×83 (libjpeg), then ×0.8 → 100×66
    assert size(r) == (100, 66)
    assert image.bands == 3 and image.interpretation == "srgb"


def test_adobe_rgb_jpeg_is_converted_with_its_profile(client: httpx.Client) -> None:
    name = "jpeg-adobergb-icc-sample.jpg"
    image = decode(ok(client, "format=png", corpus_bytes(name)))
    assert (image - reference_srgb(name)).abs().avg() < 0.8
    ignored_profile = pyvips.Image.new_from_buffer(corpus_bytes(name), "")
    assert (image - ignored_profile).abs().avg() > 1.5
    assert "icc-profile-data" not in image.get_fields()


def test_sixteen_bit_png_becomes_8_bit_srgb(client: httpx.Client) -> None:
    image = decode(ok(client, "format=png", corpus_bytes("png-rgb16.png")))
    assert image.format == "uchar" and image.bands == 3 and image.interpretation == "srgb"
    source = pyvips.Image.new_from_buffer(corpus_bytes("png-rgb16.png"), "")
    assert source.format == "ushort"
    assert (image - (source / 257)).abs().avg() < 1.0


def test_sixteen_bit_adobe_rgb_tiff_becomes_8_bit_srgb(client: httpx.Client) -> None:
    name = "tiff-rgb16-adobergb-fujixt2.tiff"
    for fmt in ("png", "tiff", "webp"):
        image = decode(ok(client, f"format={fmt}&lossless=true", corpus_bytes(name)))
        assert image.format == "uchar" and image.bands == 3, fmt
        assert (image - reference_srgb(name)).abs().avg() < 1.5, fmt
        assert "icc-profile-data" not in image.get_fields()


def test_sixteen_bit_resize_and_greyscale(client: httpx.Client) -> None:
    r = ok(client, "width=100&greyscale=true&format=png", corpus_bytes("png-rgb16.png"))
    image = decode(r)
    assert size(r) == (100, 152)
    assert image.format == "uchar" and (image[0] - image[2]).abs().max() == 0


def test_sixteen_bit_rgba_contain_padding(client: httpx.Client) -> None:
    rgba16 = (solid(60, 40, [100, 150, 200, 255]).cast("ushort") * 257).copy(interpretation="rgb16")
    r = ok(client, "width=80&height=80&fit=contain&format=png", png(rgba16))
    image = decode(r)
    assert image.format == "uchar" and image.bands == 4
    assert pixel(image, 0, 0) == [0.0, 0.0, 0.0, 255.0]
    assert pixel(image, 40, 40) == [100.0, 150.0, 200.0, 255.0]


def test_greyscale_input_becomes_rgb(client: httpx.Client) -> None:
    image = decode(ok(client, "format=png", png(solid(20, 10, [77]))))
    assert image.bands == 3 and pixel(image, 5, 5) == [77.0, 77.0, 77.0]


def test_palette_png_input(client: httpx.Client) -> None:
    r = ok(client, "width=145&format=png", corpus_bytes("png-palette-8bit.png"))
    assert size(r) == (145, 221)
    assert decode(r).bands == 3


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "tiff", "gif"])
def test_outputs_carry_no_metadata(client: httpx.Client, fmt: str) -> None:
    # A camera JPEG with EXIF (GPS) and an ICC-tagged, oriented one.
    for name in ("jpeg-small-nikon-p6000-gps.jpg", "orientation/Landscape_6.jpg"):
        image = decode(ok(client, f"width=64&format={fmt}", corpus_bytes(name)))
        fields = set(image.get_fields())
        for meta in ("exif-data", "icc-profile-data", "xmp-data", "iptc-data"):
            assert meta not in fields, (fmt, name, meta)
        # (the TIFF loader always reports the baseline tag's default, 1)
        assert "orientation" not in fields or image.get("orientation") == 1


def test_alpha_is_flattened_onto_black_for_jpeg(client: httpx.Client) -> None:
    half = solid(20, 20, [255, 255, 255, 255]).join(solid(20, 20, [255, 255, 255, 0]), "horizontal")
    image = decode(ok(client, "format=jpeg&quality=100", png(half)))
    assert image.bands == 3
    assert min(pixel(image, 5, 10)) > 245
    assert max(pixel(image, 35, 10)) < 10
