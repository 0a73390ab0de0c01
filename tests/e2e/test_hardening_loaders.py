"""Loader policy: only the magic-byte-detected formats' loaders are reachable.

Bodies in formats libvips could read (its own `.v`, matrix, CSV, PPM, FITS, Radiance,
BMP, PSD …) are refused by detection with 400 `image: unknown image type`; libvips is
configured so that even a sniffing call could not reach a loader outside the allow-list.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import httpx
import pytest
import pyvips
from tests.hardening import TEXT, encode, synthetic
from tests.serverproc import CORPUS, ServerProcess

from imaged.engine import vips
from imaged.engine.formats import LOADERS

UNKNOWN = "image: unknown image type"
ALLOWED_DECODERS = {"avif", "gif", "heic", "jpeg", "jxl", "pdf", "png", "svg", "tiff", "webp"}


def vips_native() -> bytes:
    """libvips' own format: magic 08 f2 a6 b6 (or b6 a6 f2 08), a 64-byte header, pixels."""
    header = struct.pack("<IIIIIIIIffffII", 0xB6A6F208, 4, 4, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0)
    return header.ljust(64, b"\x00") + bytes(16)


UNREACHABLE: dict[str, bytes] = {
    "vips": vips_native(),
    "matrix": b"2 2 1 0\n1 2\n3 4\n",
    "csv": b"1,2,3,4\n5,6,7,8\n9,10,11,12\n",
    "ppm": b"P6\n2 2\n255\n" + bytes(12),
    "pfm": b"PF\n2 2\n-1.0\n" + bytes(48),
    "fits": b"SIMPLE  =                    T" + b" " * 50 + bytes(2800),
    "radiance": b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 2\n" + bytes(16),
    "bmp": b"BM" + struct.pack("<IHHI", 70, 0, 0, 54) + bytes(64),
    "psd": b"8BPS\x00\x01" + bytes(40),
    "ico": b"\x00\x00\x01\x00\x01\x00" + bytes(40),
    "openexr": b"\x76\x2f\x31\x01" + bytes(40),
    "dicom": bytes(128) + b"DICM" + bytes(40),
    "analyze": struct.pack(">i", 348) + bytes(344),
    "mat": b"MATLAB 5.0 MAT-file" + bytes(120),
    "imagemagick-mvg": b"push graphic-context\nviewbox 0 0 10 10\npop graphic-context\n",
    "html-with-svg": b"<html><body><svg width='10' height='10'></svg></body></html>",
    "svg-after-1024": b" " * 1100 + b"<svg width='10' height='10'></svg>",
    "short": b"\xff\xd8\xff\xe0",
    "empty": b"",
}


@pytest.fixture(scope="module")
def decoders(client: httpx.Client) -> set[str]:
    return set(client.get("/healthz").json()["decoders"])


def test_decoder_list_is_within_the_allow_list(decoders: set[str]) -> None:
    assert decoders <= ALLOWED_DECODERS
    assert {"gif", "jpeg", "png", "svg", "tiff", "webp"} <= decoders


@pytest.mark.parametrize("name", sorted(UNREACHABLE))
@pytest.mark.parametrize("route", ["/transform", "/metadata?stats=1"])
def test_other_formats_are_unknown(client: httpx.Client, name: str, route: str) -> None:
    r = client.put(route, content=UNREACHABLE[name], headers={"Content-Type": "image/x-any"})
    assert r.status_code == 400, r.text
    assert r.text == UNKNOWN
    assert r.headers["content-type"] == TEXT


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"),
        ("jxl", b"\xff\x0a" + bytes(30)),
        ("heic", (CORPUS / "heic-iphone11-displayp3-gps.heic").read_bytes()),
    ],
)
def test_optional_decoders(
    client: httpx.Client, decoders: set[str], name: str, body: bytes
) -> None:
    """Detected formats without a decoder get their own 400; with one, 200 or `image: …`."""
    r = client.put("/metadata", content=body)
    if name in decoders:
        assert r.status_code in (200, 400)
        assert r.status_code == 200 or r.text.startswith("image: ")
    else:
        assert r.status_code == 400
        assert r.text == f"image: decoding type {name} is not supported"


@pytest.mark.parametrize(
    ("magic", "payload"),
    [
        (b"GIF89a", encode(synthetic(8, 8), ".png")),
        (b"\x89PNG\r\n\x1a\n", encode(synthetic(8, 8), ".tif")),
        (b"\xff\xd8\xff", b"2 2\n1 2\n3 4\n" * 4),
        (b"II*\x00", vips_native()),
        (b"RIFF\x00\x00\x00\x00WEBP", encode(synthetic(8, 8), ".jpg")),
    ],
)
def test_detected_format_is_the_only_loader_tried(
    client: httpx.Client, magic: bytes, payload: bytes
) -> None:
    """A body is decoded by its detected format's loader or not at all: a GIF signature on
    PNG bytes is a broken GIF, never a PNG found by libvips' own sniffing."""
    r = client.put("/transform?format=png", content=magic + payload)
    assert r.status_code == 400
    assert r.text.startswith("image: ") and r.text != UNKNOWN


@pytest.fixture
def configured() -> Iterator[None]:
    vips.configure()
    yield


def test_libvips_blocks_every_loader_outside_the_allow_list(configured: None) -> None:
    for name in ("matrixload", "matrixload_source", "csvload", "vipsload", "rawload"):
        assert not vips.operation_available(name), name
    for name in ("fitsload", "magickload_buffer", "uhdrload_buffer", "ppmload_buffer"):
        assert not vips.operation_available(name), name
    for name in ("jpegload_buffer", "pngload_buffer", "gifload_buffer", "webpload_buffer"):
        assert vips.operation_available(name), name
    assert vips.operation_available(LOADERS["svg"])
    # Even libvips' own sniffing finds nothing for a matrix file.
    with pytest.raises(pyvips.Error):
        pyvips.Image.new_from_buffer(UNREACHABLE["matrix"], "")


def test_server_survives(server: ServerProcess) -> None:
    assert server.proc.poll() is None
    with server.client() as c:
        assert c.get("/healthz").status_code == 200
