"""/transform error statuses and texts (http-api.md PUT /transform, transform.md Errors)."""

from __future__ import annotations

import random
from collections.abc import Callable

import httpx
import pytest
import pyvips
from tests.serverproc import ServerProcess
from tests.transform_support import TEXT, corpus_bytes, ok, png, put, solid

PNG = png(solid(40, 30, [10, 120, 230]))
IMAGE_HEADERS = ("x-image-width", "x-image-height", "x-response-time-ms", "x-imaged-warnings")


def assert_error(r: httpx.Response, text: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text[:200])
    assert r.text == text
    assert r.headers["content-type"] == TEXT
    for header in IMAGE_HEADERS:
        assert header not in r.headers


@pytest.fixture(scope="module")
def codecs(client: httpx.Client) -> dict[str, list[str]]:
    body: dict[str, list[str]] = client.get("/healthz").json()
    return body


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a", b"GIF89a", b"hello world!" * 20, bytes(200),
     b"<html><svg></svg></html>", b"RIFF\x00\x00\x00\x00WEBX"],
)  # fmt: skip
def test_unknown_image_type(client: httpx.Client, data: bytes) -> None:
    r = client.put("/transform?width=10", content=data, headers={"Content-Type": "image/png"})
    assert_error(r, "image: unknown image type")


def test_missing_body(client: httpx.Client) -> None:
    assert_error(client.put("/transform"), "image data must be provided in the request body")
    # parameters are validated (and the encoder checked) before the body
    r = client.put("/transform?quality=x&strict=1")
    assert r.status_code == 400 and r.text.startswith("Invalid parameters:")
    assert_error(client.put("/transform?format=pdf"), "image: encoding type pdf is not supported")


@pytest.mark.parametrize("fmt", ["pdf", "svg", "PDF", "Svg"])
def test_never_encodable_formats(client: httpx.Client, fmt: str) -> None:
    assert_error(
        put(client, f"format={fmt}", PNG), f"image: encoding type {fmt.lower()} is not supported"
    )


def test_strict_error_wins_over_encoder_error(client: httpx.Client) -> None:
    r = put(client, "format=svg&width=x&strict=1", PNG)
    assert r.text == 'Invalid parameters:\n- width: must be a positive integer (got "x")'


@pytest.mark.parametrize("fmt", ["heic", "jxl", "avif", "pdf"])
def test_decoder_availability(client: httpx.Client, codecs: dict[str, list[str]], fmt: str) -> None:
    samples = {
        "heic": corpus_bytes("heic-iphone11-displayp3-gps.heic"),
        "avif": corpus_bytes("avif-olympus-epl8.avif"),
        "jxl": b"\xff\x0a" + bytes(30),
        "pdf": b"%PDF-1.4\n" + bytes(30),
    }
    r = put(client, "width=32", samples[fmt])
    if fmt in codecs["decoders"]:
        assert r.status_code in (200, 400)
        if r.status_code == 400:
            assert r.text.startswith("image: ")
    else:
        assert_error(r, f"image: decoding type {fmt} is not supported")


def test_heif_detection_by_compatible_brand(
    client: httpx.Client, codecs: dict[str, list[str]]
) -> None:
    data = bytearray(corpus_bytes("avif-olympus-epl8.avif"))
    assert data[8:12] == b"avif"
    data[8:12] = b"mif1"  # major brand generic; `avif` stays in the compatible brands
    assert b"avif" in data[16:32]
    r = put(client, "width=32&format=png", bytes(data))
    assert "avif" in codecs["decoders"]
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "name",
    ["jpeg-small-nikon-p6000-gps.jpg", "png-palette-8bit.png", "webp-lossy-photo.webp",
     "avif-olympus-epl8.avif", "gif-animated-10f.gif", "tiff-rgb16-adobergb-fujixt2.tiff"],
)  # fmt: skip
def test_truncated_input(client: httpx.Client, name: str) -> None:
    data = corpus_bytes(name)
    # (cut the GIF inside its first frame: only frame 0 is decoded)
    cut = 1000 if name.endswith(".gif") else len(data) // 2
    r = put(client, "width=32", data[:cut])
    assert r.status_code == 400, (name, r.status_code)
    assert r.text.startswith("image: ") and "\n" not in r.text
    for header in IMAGE_HEADERS:
        assert header not in r.headers


def test_bit_flipped_inputs_never_5xx(client: httpx.Client) -> None:
    rng = random.Random(7)
    names = ["jpeg-small-nikon-p6000-gps.jpg", "png-palette-8bit.png", "webp-alpha.webp",
             "gif-animated-10f.gif", "avif-olympus-epl8.avif", "svg-libvips-logo.svg"]  # fmt: skip
    for name in names:
        original = corpus_bytes(name)
        for _ in range(6):
            data = bytearray(original)
            for _ in range(12):
                data[rng.randrange(12, len(data))] ^= 1 << rng.randrange(8)
            r = put(client, "width=24&format=png", bytes(data))
            assert r.status_code in (200, 400), (name, r.status_code)
            if r.status_code == 400:
                assert r.text.startswith("image: ")
    assert client.get("/healthz").status_code == 200


def test_pixel_limit_on_the_full_size_load(client: httpx.Client) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="20000" height="20000"></svg>'
    assert_error(put(client, "width=10", svg), "image: Input image exceeds pixel limit")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="50000" height="50000"></svg>'
    assert_error(put(client, "width=10", svg), "image: Input image exceeds pixel limit")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="40000" height="10"></svg>'
    r = put(client, "width=10", svg)
    assert r.status_code == 400 and r.text.startswith("image: Input SVG image exceeds")


def test_pixel_limit_option(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--pixel-limit", "1200", "--dimension-limit", "100")
    with server.client() as client:
        over = png(solid(41, 30, [1, 2, 3]))
        assert_error(put(client, "width=10", over), "image: Input image exceeds pixel limit")
        at_limit = png(solid(40, 30, [1, 2, 3]))
        assert ok(client, "", at_limit).status_code == 200
        r = ok(client, "width=500&fit=contain&format=png", png(solid(20, 10, [1, 2, 3])))
        assert r.headers["x-imaged-warnings"] == "width: must be at most 100"
        assert r.headers["x-image-width"] == "100"


def test_channel_limit(client: httpx.Client) -> None:
    six = pyvips.Image.black(8, 8, bands=6).cast("uchar")
    assert_error(put(client, "", six.tiffsave_buffer()), "image: Input image exceeds channel limit")


@pytest.mark.parametrize(
    ("fmt", "width", "name"),
    [("webp", 16384, "WebP"), ("avif", 16385, "HEIF"), ("jpeg", 65536, "JPEG"),
     ("gif", 65536, "GIF")],
)  # fmt: skip
def test_too_large_for_the_format(
    client: httpx.Client, codecs: dict[str, list[str]], fmt: str, width: int, name: str
) -> None:
    if fmt not in codecs["encoders"]:
        pytest.skip(f"{fmt} is not an encoder here")
    wide = png(solid(width, 1, [0, 0, 0]))
    assert_error(
        put(client, f"format={fmt}", wide),
        f"image: Processed image is too large for the {name} format",
    )


def test_webp_limit_reached_by_contain_padding(client: httpx.Client) -> None:
    r = put(client, "format=webp&width=16384&fit=contain", PNG)
    assert_error(r, "image: Processed image is too large for the WebP format")
    r = ok(client, "format=webp&width=16383&fit=contain", PNG)
    assert r.headers["x-image-width"] == "16383"
