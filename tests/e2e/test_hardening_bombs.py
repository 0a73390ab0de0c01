"""Decompression bombs: tiny files declaring huge images are refused from the header,
fast and without allocating pixel memory; an image just under the limit streams.

Every bomb is built here, byte by byte, so what it declares is exact.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator

import pytest
import pyvips
from tests.hardening import TEXT, encode, proc_status, raw_request, synthetic
from tests.serverproc import ServerProcess

SECONDS = 5.0  # generous for a loaded 2-core machine; the real cost is milliseconds
MEMORY = 100 * 2**20  # peak RSS growth allowed for all bombs together
PIXEL_LIMIT = "image: Input image exceeds pixel limit"


# --- builders -----------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, rows: int, colour_type: int = 2, level: int = 1) -> bytes:
    """An RGB (or grey) PNG of zeros declaring width×height, with `rows` rows of data."""
    channels = {0: 1, 2: 3, 6: 4}[colour_type]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    compressor = zlib.compressobj(level)
    row = bytes(1 + width * channels)
    idat = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def jpeg(width: int, height: int, progressive: bool = False) -> bytes:
    """A real 16×16 JPEG whose frame header (SOF) is patched to declare width×height."""
    data = bytearray(encode(synthetic(16, 16), ".jpg", interlace=progressive))
    marker = b"\xff\xc2" if progressive else b"\xff\xc0"
    sof = data.index(marker)
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def lzw_1x1() -> bytes:
    """GIF LZW data (min code size 2) for a single pixel of colour 0: CLEAR, 0, END."""
    bits = 4 | (0 << 3) | (5 << 6)  # three 3-bit codes, LSB first
    return bytes([2, 2, bits & 0xFF, bits >> 8, 0])


def gif(
    screen: tuple[int, int],
    frames: int,
    frame: tuple[int, int] = (1, 1),
    later: tuple[int, int] | None = None,
) -> bytes:
    """GIF89a with a 4-colour palette and `frames` frames of `frame` size (1×1 of data);
    frames after the first declare `later` instead, if given."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", *screen, 0x91, 0, 0))
    out += bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    control = b"\x21\xf9\x04\x00\x01\x00\x00\x00"  # graphic control: 10 ms delay

    def block(size: tuple[int, int]) -> bytes:
        return control + b"\x2c" + struct.pack("<HHHHB", 0, 0, *size, 0) + lzw_1x1()

    out += block(frame) + block(later or frame) * (frames - 1)
    out += b"\x3b"
    return bytes(out)


def webp_lossy(width: int, height: int) -> bytes:
    """A real lossy WebP whose VP8 frame header is patched to width×height (14 bits each)."""
    data = bytearray(encode(synthetic(16, 16), ".webp", keep="none"))
    start = data.index(b"\x9d\x01\x2a")
    struct.pack_into("<HH", data, start + 3, width & 0x3FFF, height & 0x3FFF)
    return bytes(data)


def webp_lossless(width: int, height: int) -> bytes:
    """A real lossless WebP whose VP8L header is patched to width×height."""
    data = bytearray(encode(synthetic(16, 16), ".webp", lossless=True, keep="none"))
    start = data.index(b"VP8L") + 8
    assert data[start] == 0x2F
    (bits,) = struct.unpack_from("<I", data, start + 1)
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | ((height - 1) << 14)
    struct.pack_into("<I", data, start + 1, bits)
    return bytes(data)


def webp_canvas(width: int, height: int) -> bytes:
    """An animated (VP8X + ANMF) WebP declaring a width×height canvas, one 16×16 frame."""
    plain = encode(synthetic(16, 16), ".webp", keep="none")
    frame = plain[12:]  # the VP8 chunk
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x02, 0, 0, 0])  # animation flag
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    anim = b"ANIM" + struct.pack("<I", 6) + bytes(4) + struct.pack("<H", 0)
    anmf_data = bytes(6) + (15).to_bytes(3, "little") * 2 + (100).to_bytes(3, "little") + b"\x00"
    anmf_data += frame
    anmf = b"ANMF" + struct.pack("<I", len(anmf_data)) + anmf_data
    body = b"WEBP" + vp8x + anim + anmf
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tiff(width: int, height: int) -> bytes:
    """Little-endian grey TIFF, one deflate strip of zeros, declaring width×height."""
    return tiff_pages([(width, height)])


def tiff_pages(sizes: list[tuple[int, int]]) -> bytes:
    """A multi-page grey TIFF: one IFD and one deflate strip of zeros per declared size."""
    strip = zlib.compress(bytes(1 << 20), 9)
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for index, (width, height) in enumerate(sizes):
        entries = [
            (256, 4, width),  # ImageWidth LONG
            (257, 4, height),  # ImageLength
            (258, 3, 8),  # BitsPerSample SHORT
            (259, 3, 8),  # Compression: deflate
            (262, 3, 1),  # Photometric: min-is-black
            (273, 4, 0),  # StripOffsets (set below)
            (277, 3, 1),  # SamplesPerPixel
            (278, 4, height),  # RowsPerStrip
            (279, 4, len(strip)),  # StripByteCounts
        ]
        ifd_at = len(out)
        strip_at = ifd_at + 2 + 12 * len(entries) + 4
        next_ifd = strip_at + len(strip) if index + 1 < len(sizes) else 0
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            value = strip_at if tag == 273 else value
            packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            out += struct.pack("<HHI", tag, kind, 1) + packed
        out += struct.pack("<I", next_ifd) + strip
    return bytes(out)


def svg(width: str, height: str, extra: str = "") -> bytes:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" {extra}>'
        '<rect width="100%" height="100%" fill="blue"/></svg>'
    ).encode()


def exif_loop_jpeg() -> bytes:
    """A JPEG whose EXIF IFD0 links to itself and whose EXIF sub-IFD points at IFD0."""
    tiff_head = b"II*\x00" + struct.pack("<I", 8)
    ifd = struct.pack("<H", 3)
    ifd += struct.pack("<HHII", 0x010F, 2, 0xFFFFFFF0, 8)  # Make: absurd count
    ifd += struct.pack("<HHII", 0x8769, 4, 1, 8)  # ExifIFD → IFD0 itself
    ifd += struct.pack("<HHII", 0x8825, 4, 1, 8)  # GPS IFD → IFD0 itself
    ifd += struct.pack("<I", 8)  # next IFD → itself
    blob = b"Exif\x00\x00" + tiff_head + ifd
    base = encode(synthetic(16, 16), ".jpg")
    app1 = b"\xff\xe1" + struct.pack(">H", len(blob) + 2) + blob
    return base[:2] + app1 + base[2:]


BOMBS: dict[str, bytes] = {
    "png-50000": png(50000, 50000, rows=64),
    "png-max": png(0x7FFFFFFF, 0x7FFFFFFF, rows=0),
    "png-rgba-20000x20000": png(20000, 20000, rows=16, colour_type=6),
    "jpeg-50000": jpeg(50000, 50000),
    "jpeg-progressive-50000": jpeg(50000, 50000, progressive=True),
    "jpeg-max": jpeg(65535, 65535),
    "gif-65535": gif((65535, 65535), 1, (65535, 65535)),
    "gif-frame-65535-on-small-screen": gif((16, 16), 1, (65535, 65535)),
    "webp-16383": webp_lossy(16383, 16383),
    "webp-lossless-16383": webp_lossless(16383, 16383),
    "webp-canvas-16383": webp_canvas(16383, 16383),
    "webp-canvas-max": webp_canvas(1 << 24, 1 << 24),
    "tiff-50000": tiff(50000, 50000),
    "tiff-max": tiff(0xFFFFFFFF, 0xFFFFFFFF),
    "svg-50000": svg("50000", "50000"),
    "svg-viewbox-50000": svg("100%", "100%", 'viewBox="0 0 50000 50000"'),
    # Under the pixel limit, over the side limit: libvips buffers whole scanlines, and
    # resizing this 10 000 000 × 10 PNG (292 kB) to 100 px would peak at ~5 GB.
    "png-10000000x10": png(10_000_000, 10, rows=1),
    "png-1x10000000": png(1, 10_000_000, rows=1),
    "tiff-100001x1": tiff(100_001, 1),
}
QUERIES = [
    "/transform",
    "/transform?width=100",
    "/transform?width=10&height=10&fit=fill&format=png",
    "/metadata",
    "/metadata?stats=1&thumbhash=1&exif=1",
]


# --- tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb_server() -> Iterator[ServerProcess]:
    with ServerProcess(["--concurrency", "2"]) as proc:
        yield proc


def timed(port: int, target: str, body: bytes) -> tuple[int, str, float]:
    started = time.monotonic()
    r = raw_request(port, "PUT", target, body)
    return r.status, r.text, time.monotonic() - started


def test_bombs_are_refused_fast_with_bounded_memory(bomb_server: ServerProcess) -> None:
    port, pid = bomb_server.port, bomb_server.proc.pid
    # Warm up every code path once so the baseline includes libvips' own start-up memory.
    normal = encode(synthetic(64, 48), ".png")
    for target in QUERIES:
        assert timed(port, target, normal)[0] == 200
    baseline = proc_status(pid, "VmHWM")
    failures = []
    for name, body in BOMBS.items():
        for target in QUERIES:
            status, text, seconds = timed(port, target, body)
            if not (400 <= status < 500 and seconds < SECONDS and text.startswith("image: ")):
                failures.append((name, target, status, text[:120], round(seconds, 2)))
    grown = proc_status(pid, "VmHWM") - baseline
    assert not failures, failures
    assert grown < MEMORY, f"peak RSS grew by {grown / 2**20:.0f} MiB"
    assert raw_request(port, "GET", "/healthz").status == 200


@pytest.mark.parametrize(
    "name",
    [
        "png-50000",
        "jpeg-50000",
        "gif-65535",
        "webp-16383",
        "webp-canvas-16383",
        "tiff-50000",
        "svg-50000",
    ],
)
@pytest.mark.parametrize("target", ["/transform?width=64", "/metadata?stats=1&thumbhash=1"])
def test_declared_size_over_the_pixel_limit_names_it(
    bomb_server: ServerProcess, name: str, target: str
) -> None:
    """The spec's examples: the 400 is the pixel-limit message itself."""
    r = raw_request(bomb_server.port, "PUT", target, BOMBS[name])
    assert r.status == 400
    assert r.text == PIXEL_LIMIT
    assert r.header("content-type") == TEXT


def test_svg_side_over_32767_is_refused(bomb_server: ServerProcess) -> None:
    r = raw_request(bomb_server.port, "PUT", "/metadata", svg("40000", "100"))
    assert r.status == 400
    assert r.text == "image: Input SVG image exceeds 32767x32767 pixel limit"


@pytest.mark.parametrize("size", ["1e9", "-5", "0", "NaN", "1e400", "99999999999999999999"])
def test_absurd_svg_sizes_are_answered_fast(bomb_server: ServerProcess, size: str) -> None:
    for target in ("/transform?format=png", "/metadata?stats=1"):
        status, text, seconds = timed(bomb_server.port, target, svg(size, size))
        assert status == 200 or (status == 400 and text.startswith("image: ")), text
        assert seconds < SECONDS


def test_gif_with_10000_frames(bomb_server: ServerProcess) -> None:
    """Only the first frame is decoded: fast, small, and `pages` still counts all of them."""
    body = gif((2000, 2000), 10000)
    pid = bomb_server.proc.pid
    baseline = proc_status(pid, "VmHWM")
    status, text, seconds = timed(bomb_server.port, "/metadata", body)
    assert seconds < SECONDS
    if status == 200:
        assert '"pages":10000' in text, text
    else:
        assert status == 400 and text.startswith("image: "), text
    for target in ("/transform?format=png", "/metadata?stats=1&thumbhash=1"):
        status, text, seconds = timed(bomb_server.port, target, body)
        assert (status == 200 or (status == 400 and text.startswith("image: "))) and (
            seconds < SECONDS
        ), (target, status, text[:200], seconds)
    # One 2000×2000 frame is 16 MB as RGBA; all frames would be 160 GB.
    assert proc_status(pid, "VmHWM") - baseline < MEMORY


@pytest.mark.parametrize(
    ("body", "pages"),
    [
        (gif((16, 16), 3, (16, 16), later=(65535, 65535)), 3),
        (gif((16, 16), 200, (16, 16), later=(4000, 4000)), 200),
        (tiff_pages([(16, 16), (50000, 50000)]), 2),
        (tiff_pages([(16, 16)] + [(9000, 9000)] * 50), 51),
    ],
    ids=["gif-huge-second-frame", "gif-200-big-frames", "tiff-huge-page-2", "tiff-50-big-pages"],
)
def test_huge_later_pages_are_never_decoded(
    bomb_server: ServerProcess, body: bytes, pages: int
) -> None:
    """The first page is fine and is all that is decoded: fast and small, though the later
    pages together declare far more than the pixel limit; `pages` still counts them all."""
    pid = bomb_server.proc.pid
    baseline = proc_status(pid, "VmHWM")
    for target in QUERIES:
        status, text, seconds = timed(bomb_server.port, target, body)
        assert status == 200, (target, text)
        assert seconds < SECONDS, (target, seconds)
        if target.startswith("/metadata"):
            assert f'"pages":{pages},' in text, text
    assert proc_status(pid, "VmHWM") - baseline < MEMORY


def test_exif_loops_terminate(bomb_server: ServerProcess) -> None:
    status, text, seconds = timed(bomb_server.port, "/metadata?exif=1", exif_loop_jpeg())
    assert seconds < SECONDS
    assert status == 200 or (status == 400 and text.startswith("image: ")), text
    status, text, seconds = timed(bomb_server.port, "/transform", exif_loop_jpeg())
    assert status == 200 and seconds < SECONDS


@pytest.mark.slow
def test_image_just_under_the_pixel_limit_streams(bomb_server: ServerProcess) -> None:
    """10000×9999 RGB (300 MB decoded) is resized in sequential mode with far less memory."""
    body = png(10000, 9999, rows=9999)
    pid = bomb_server.proc.pid
    baseline = proc_status(pid, "VmHWM")
    r = raw_request(bomb_server.port, "PUT", "/transform?width=100&format=png", body)
    assert r.status == 200, r.text
    assert (r.header("x-image-width"), r.header("x-image-height")) == ("100", "100")
    out = pyvips.Image.new_from_buffer(r.body, "")
    assert out.max() == 0  # all black, as declared
    grown = proc_status(pid, "VmHWM") - baseline
    assert grown < 150 * 2**20, f"peak RSS grew by {grown / 2**20:.0f} MiB (decoded: 286 MiB)"


@pytest.mark.parametrize("name", ["png-10000000x10", "png-1x10000000", "tiff-100001x1"])
@pytest.mark.parametrize("target", ["/transform?width=64", "/metadata?stats=1&thumbhash=1"])
def test_side_over_the_input_side_limit_names_it(
    bomb_server: ServerProcess, name: str, target: str
) -> None:
    r = raw_request(bomb_server.port, "PUT", target, BOMBS[name])
    assert (r.status, r.text) == (400, "image: Input image width or height exceeds 100000 pixels")


@pytest.mark.parametrize("width", [100000, 100])
def test_sides_up_to_the_limit_are_served(bomb_server: ServerProcess, width: int) -> None:
    body = png(width, 3, rows=3)
    r = raw_request(bomb_server.port, "PUT", "/transform?width=50&format=png", body)
    assert r.status == 200, r.text
    assert r.header("x-image-width") == "50"


def test_input_side_limit_setting() -> None:
    with ServerProcess(["--input-side-limit", "100"]) as proc:
        ok = raw_request(proc.port, "PUT", "/metadata", png(100, 100, rows=100))
        assert ok.status == 200, ok.text
        for size in ((101, 1), (1, 101)):
            r = raw_request(proc.port, "PUT", "/metadata", png(*size, rows=size[1]))
            assert (r.status, r.text) == (
                400,
                "image: Input image width or height exceeds 100 pixels",
            )


@pytest.mark.slow
def test_pixel_metadata_of_an_image_under_the_limit_streams(bomb_server: ServerProcess) -> None:
    """stats + thumbhash of 10000×9999 16-bit RGBA (763 MiB decoded, a 1 MB PNG) decode it
    again per pass instead of holding it: the peak grows by far less than the image."""
    black = pyvips.Image.black(10000, 9999, bands=3).cast("ushort").bandjoin_const([65535])
    body = encode(black.copy(interpretation="rgb16"), ".png", compression=9)
    pid = bomb_server.proc.pid
    baseline = proc_status(pid, "VmHWM")
    r = raw_request(
        bomb_server.port, "PUT", "/metadata?stats=true&thumbhash=true", body, timeout=300
    )
    assert r.status == 200, r.text
    fields = r.json()
    assert fields["stats"]["isOpaque"] is True
    assert fields["stats"]["channels"][3]["min"] == 65535
    assert fields["stats"]["dominant"] == {"r": 8, "g": 8, "b": 8}
    assert fields["thumbhash"]
    grown = proc_status(pid, "VmHWM") - baseline
    assert grown < 200 * 2**20, f"peak RSS grew by {grown / 2**20:.0f} MiB (decoded: 763 MiB)"
