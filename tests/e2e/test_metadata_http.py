"""PUT /metadata over HTTP: base fields, corpus, errors, strict/lenient (metadata.md,
http-api.md "PUT /metadata")."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
import pyvips
from tests.serverproc import CORPUS, ServerProcess

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
MISSING_BODY = "image data must be provided in the request body"
BASE_KEYS = [
    "format", "width", "height", "size", "space", "channels", "depth", "density",
    "resolutionUnit", "chromaSubsampling", "isProgressive", "isPalette", "bitsPerSample",
    "pages", "pageHeight", "loop", "delay", "background", "orientation", "hasProfile",
    "hasAlpha", "exif", "stats", "thumbhash", "blurhash",
]  # fmt: skip


def put(client: httpx.Client, data: bytes, query: str = "") -> httpx.Response:
    return client.put(f"/metadata{'?' + query if query else ''}", content=data)


def body(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    assert response.headers["x-response-time-ms"].isdigit()
    parsed: dict[str, Any] = json.loads(response.text)
    # Keys appear in the spec's table order.
    assert list(parsed) == [k for k in BASE_KEYS if k in parsed]
    assert response.text == json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
    return parsed


def rgb(width: int, height: int, colour: tuple[int, int, int] = (200, 100, 50)) -> pyvips.Image:
    image = pyvips.Image.black(width, height, bands=3).linear(1, list(colour)).cast("uchar")
    return image.copy(interpretation="srgb")


def test_spec_example_oriented_jpeg_with_profile(client: httpx.Client) -> None:
    image = rgb(100, 80).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    data = image.jpegsave_buffer(profile="srgb", keep="exif,icc")
    r = put(client, data)
    assert r.text == (
        f'{{"format":"jpeg","width":80,"height":100,"size":{len(data)},"space":"srgb",'
        '"channels":3,"depth":"uchar","resolutionUnit":"inch","chromaSubsampling":"4:2:0",'
        '"isProgressive":false,"isPalette":false,"orientation":6,"hasProfile":true,'
        '"hasAlpha":false}'
    )
    assert "x-imaged-warnings" not in r.headers


@pytest.mark.parametrize(("orientation", "swapped"), [(1, False), (4, False), (5, True), (8, True)])
def test_oriented_dimensions(client: httpx.Client, orientation: int, swapped: bool) -> None:
    data = (CORPUS / "orientation" / f"Landscape_{orientation}.jpg").read_bytes()
    fields = body(put(client, data))
    assert (fields["width"], fields["height"]) == (1800, 1200)
    assert fields["orientation"] == orientation
    stored = pyvips.Image.new_from_buffer(data, "")
    assert (stored.width == 1200) is swapped


def test_progressive_jpeg_and_interlaced_png(client: httpx.Client) -> None:
    image = rgb(64, 48)
    jpeg = body(put(client, image.jpegsave_buffer(interlace=True, Q=80, keep="none")))
    assert jpeg["isProgressive"] is True
    assert body(put(client, image.jpegsave_buffer(keep="none")))["isProgressive"] is False
    png = body(put(client, image.pngsave_buffer(interlace=True)))
    assert png["isProgressive"] is True and png["format"] == "png"
    assert png["bitsPerSample"] == 8


def test_palette_png(client: httpx.Client) -> None:
    fields = body(put(client, (CORPUS / "png-palette-8bit.png").read_bytes()))
    assert fields["isPalette"] is True
    assert fields["bitsPerSample"] == 8
    made = body(put(client, rgb(20, 20).pngsave_buffer(palette=True, bitdepth=4)))
    assert made["isPalette"] is True and made["bitsPerSample"] == 4
    assert body(put(client, rgb(20, 20).pngsave_buffer()))["isPalette"] is False


@pytest.mark.parametrize("name", ["gif-animated-10f.gif", "webp-animated-10f.webp"])
def test_animations_report_all_pages(client: httpx.Client, name: str) -> None:
    fields = body(put(client, (CORPUS / name).read_bytes(), "stats&thumbhash"))
    assert (fields["width"], fields["height"]) == (370, 285)  # first frame only
    assert fields["pages"] == 10
    assert fields["loop"] == 3
    assert fields["delay"] == [3000] * 9 + [15000]
    assert "pageHeight" not in fields


def test_made_animation_with_infinite_loop(client: httpx.Client) -> None:
    frames = [rgb(12, 10, (i * 60, 0, 0)) for i in range(3)]
    strip = pyvips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", 10)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [40, 50, 60])
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    fields = body(put(client, strip.gifsave_buffer()))
    assert (fields["width"], fields["height"], fields["pages"]) == (12, 10, 3)
    assert fields["loop"] == 0
    assert fields["delay"] == [40, 50, 60]


def test_background_and_density(client: httpx.Client) -> None:
    fields = body(put(client, (CORPUS / "png-rgba-opaque-bird.png").read_bytes()))
    assert fields["background"] == {"r": 255, "g": 255, "b": 255}
    assert fields["density"] == 72 and fields["hasAlpha"] is True
    grey = pyvips.Image.black(8, 8).copy(interpretation="b-w", xres=300 / 25.4, yres=300 / 25.4)
    png = bytes(grey.cast("uchar").pngsave_buffer())
    chunk = struct.pack(">I", 2) + b"bKGD" + struct.pack(">H", 128)
    chunk += struct.pack(">I", zlib.crc32(chunk[4:]))
    fields = body(put(client, png[:33] + chunk + png[33:]))  # bKGD after IHDR
    assert fields["space"] == "b-w" and fields["channels"] == 1
    assert fields["density"] == 300
    assert fields["background"] == {"gray": 50}


def test_sixteen_bit_and_cmyk(client: httpx.Client) -> None:
    fields = body(put(client, (CORPUS / "png-rgb16.png").read_bytes()))
    assert (fields["space"], fields["depth"], fields["bitsPerSample"]) == ("rgb16", "ushort", 16)
    fields = body(put(client, (CORPUS / "jpeg-cmyk-swop-canon300d.jpg").read_bytes()))
    assert (fields["space"], fields["channels"], fields["hasAlpha"]) == ("cmyk", 4, False)
    assert fields["chromaSubsampling"] == "4:4:4:4" and fields["hasProfile"] is True


# Oriented dimensions of the corpus (MANIFEST.md); HEIC only where libvips can decode it.
CORPUS_SIZES = {
    "avif-olympus-epl8.avif": ("avif", 1920, 1080),
    "gif-animated-10f.gif": ("gif", 370, 285),
    "heic-iphone11-displayp3-gps.heic": ("heic", 2566, 3313),
    "jpeg-12mp-olympus-ep3.jpg": ("jpeg", 4032, 3024),
    "jpeg-12mp-xiaomi-mi9t-orient6.jpg": ("jpeg", 3000, 4000),
    "jpeg-3mp-canon-sx60-orient6.jpg": ("jpeg", 1536, 2048),
    "jpeg-8mp-iphone6-gps.jpg": ("jpeg", 3264, 2448),
    "jpeg-9mp-nokia83-gps.jpg": ("jpeg", 4608, 1976),
    "jpeg-adobergb-icc-sample.jpg": ("jpeg", 290, 442),
    "jpeg-cmyk-swop-canon300d.jpg": ("jpeg", 500, 333),
    "jpeg-small-nikon-p6000-gps.jpg": ("jpeg", 640, 480),
    "png-palette-8bit.png": ("png", 290, 442),
    "png-rgb16.png": ("png", 290, 442),
    "png-rgba-2048x1536.png": ("png", 2048, 1536),
    "png-rgba-opaque-bird.png": ("png", 576, 384),
    "svg-libvips-logo.svg": ("svg", 736, 552),
    "svg-w3c-struct-image-04-t.svg": ("svg", 480, 360),
    "tiff-rgb16-adobergb-fujixt2.tiff": ("tiff", 317, 211),
    "webp-alpha.webp": ("webp", 300, 300),
    "webp-animated-10f.webp": ("webp", 370, 285),
    "webp-lossy-photo.webp": ("webp", 1024, 772),
} | {f"orientation/Landscape_{i}.jpg": ("jpeg", 1800, 1200) for i in range(1, 9)}


@pytest.fixture(scope="module")
def decoders(client: httpx.Client) -> list[str]:
    return list(client.get("/healthz").json()["decoders"])


@pytest.mark.parametrize("name", sorted(CORPUS_SIZES))
def test_every_corpus_image(client: httpx.Client, decoders: list[str], name: str) -> None:
    fmt, width, height = CORPUS_SIZES[name]
    data = (CORPUS / name).read_bytes()
    r = put(client, data, "exif&stats&thumbhash")
    if fmt not in decoders:
        assert r.status_code == 400
        assert r.text == f"image: decoding type {fmt} is not supported"
        return
    fields = body(r)
    assert (fields["format"], fields["width"], fields["height"]) == (fmt, width, height)
    assert fields["size"] == len(data)
    assert fields["channels"] == len(fields["stats"]["channels"]) in (1, 2, 3, 4)
    assert fields["depth"] in ("uchar", "ushort")
    assert "x-imaged-warnings" not in r.headers
    statistics = fields["stats"]
    assert 0 <= statistics["entropy"] <= 16 and statistics["sharpness"] >= 0
    for channel in statistics["channels"]:
        assert channel["min"] <= channel["mean"] <= channel["max"]
        assert 0 <= channel["minX"] < fields["width"] + fields["height"]
    assert len(base64.b64decode(fields["thumbhash"], validate=True)) >= 5
    if fmt in ("svg", "gif", "webp", "png", "tiff"):
        assert "exif" not in fields  # no EXIF block in these files
    if fmt == "svg":
        assert fields["density"] == 72


def test_base_fields_need_no_pixel_decode_truncated_jpeg(client: httpx.Client) -> None:
    whole = (CORPUS / "jpeg-small-nikon-p6000-gps.jpg").read_bytes()
    half = whole[: len(whole) // 2]
    fields = body(put(client, half, "exif"))
    assert (fields["width"], fields["height"], fields["size"]) == (640, 480, len(half))
    assert fields["exif"]["model"] == "COOLPIX P6000"
    for flag in ("stats", "thumbhash"):
        r = put(client, half, flag)
        assert r.status_code == 400
        assert r.headers["content-type"] == TEXT
        assert r.text.startswith("image: ")
        assert "x-response-time-ms" not in r.headers


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff" + bytes(range(256)) * 4,
        (CORPUS / "gif-animated-10f.gif").read_bytes()[:40],
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect',
    ],
)
def test_unreadable_headers_are_400(client: httpx.Client, data: bytes) -> None:
    r = put(client, data)
    assert r.status_code == 400
    assert r.headers["content-type"] == TEXT
    assert r.text.startswith("image: ")


def test_unknown_and_empty_bodies(client: httpx.Client) -> None:
    r = put(client, b"hello world, not an image")
    assert (r.status_code, r.text) == (400, "image: unknown image type")
    r = client.put("/metadata", content=b"", headers={"content-type": "image/png"})
    assert (r.status_code, r.text) == (400, "image: unknown image type")


def test_missing_body_comes_before_parameter_checks(client: httpx.Client) -> None:
    r = client.put("/metadata?exif=maybe&strict=1&bogus=1")
    assert (r.status_code, r.text) == (400, MISSING_BODY)
    assert r.headers["content-type"] == TEXT


def test_strict_failure_is_json_and_wins_over_a_bad_body(client: httpx.Client) -> None:
    r = put(client, b"definitely not an image", "thumbhash=no&zz=1&zz=2&exif=maybe&strict")
    assert r.status_code == 400
    assert r.headers["content-type"] == JSON
    assert json.loads(r.text) == {
        "error": "Invalid parameters",
        "details": [
            {"param": "zz", "value": ["1", "2"], "reason": "unknown parameter"},
            {"param": "exif", "value": "maybe", "reason": "must be true, false, 1, or 0"},
            {"param": "thumbhash", "value": "no", "reason": "must be true, false, 1, or 0"},
        ],
    }
    assert "x-imaged-warnings" not in r.headers


def test_lenient_warnings_header_and_invalid_flag_means_true(client: httpx.Client) -> None:
    data = (CORPUS / "jpeg-small-nikon-p6000-gps.jpg").read_bytes()
    r = put(client, data, "stats=yes&n%C3%A9=1")
    fields = body(r)
    assert "stats" in fields
    assert r.headers["x-imaged-warnings"] == (
        "n%C3%A9: unknown parameter; stats: must be true, false, 1, or 0"
    )
    r = put(client, data, "strict=0&exif=0&stats=false&thumbhash=0")
    assert not {"exif", "stats", "thumbhash"} & set(body(r))


def test_pixel_limit_applies_to_the_header_read(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--pixel-limit", "1000")
    with server.client() as c:
        r = put(c, rgb(40, 30).pngsave_buffer())
        assert (r.status_code, r.text) == (400, "image: Input image exceeds pixel limit")
        assert put(c, rgb(40, 25).pngsave_buffer()).status_code == 200


def test_channel_limit(client: httpx.Client) -> None:
    six = pyvips.Image.new_from_array(np.zeros((4, 4, 6), dtype=np.uint8))
    r = put(client, six.tiffsave_buffer())
    assert (r.status_code, r.text) == (400, "image: Input image exceeds channel limit")
