"""Corruption battery: hundreds of truncated, bit-flipped and header-forged variants of the
corpus and of synthetic images. Each is answered 200 or 400 `image: …` by /transform and
by /metadata (with EXIF, stats and ThumbHash); never a 5xx, a dropped connection or a
traceback, and the server is alive afterwards.

Animated inputs also go through `animated=true` (every frame decoded): cut at every block
of the file, frames of bogus sizes and places, zero and huge delays, huge loop counts,
broken extensions, and frame counts far above the limit (up to 107 000 frames).

Variants are deterministic (seeded by name), so a failure names a reproducible input.
"""

from __future__ import annotations

import json
import random
import struct
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import pyvips
from tests.animations import (
    Block,
    GifFrame,
    WebpFrame,
    encode_animation,
    frame_bitstream,
    gif_blocks,
    gif_bytes,
    info,
    moving_square,
    palette,
    tiny_gif,
    tiny_webp,
    webp_blocks,
    webp_bytes,
)
from tests.hardening import IMAGE_TYPES, JSON, TEXT, encode, raw_request, synthetic
from tests.serverproc import CORPUS, ServerProcess

from imaged.engine.formats import detect

Mutation = Callable[[bytes, random.Random], bytes]
TRANSFORMS = [
    "/transform",
    "/transform?width=50",
    "/transform?format=png&width=40&height=30&fit=contain",
    "/transform?format=webp&blur=2&width=64",
    "/transform?greyscale=1&format=gif&width=32&position=entropy&height=32",
    "/transform?format=tiff&width=20&fit=fill&height=70",
]
ANIMATED_TRANSFORMS = [
    "/transform?animated=true&format=webp",
    "/transform?animated=true&format=gif&width=16",
    "/transform?animated=1&format=webp&width=20&height=10&fit=contain&blur=1",
    "/transform?animated=true&format=gif&width=12&height=12&position=attention&greyscale=1",
    "/transform?animated=true&format=png&width=10",
]
METADATA = "/metadata?exif=1&stats=1&thumbhash=1&blurhash=1"


# --- generic mutations -------------------------------------------------------------------


def truncate(fraction: float | int) -> Mutation:
    def cut(data: bytes, _: random.Random) -> bytes:
        size = fraction if isinstance(fraction, int) else int(len(data) * fraction)
        return data[: max(0, min(size, len(data) - 1))]

    return cut


def flip_bits(count: int, start: int = 12, end: int | None = None) -> Mutation:
    """Flip `count` random bits in data[start:end] (after the magic bytes by default)."""

    def flip(data: bytes, rng: random.Random) -> bytes:
        out = bytearray(data)
        stop = min(end or len(out), len(out))
        if stop <= start:
            return bytes(out)
        for _ in range(count):
            position = rng.randrange(start, stop)
            out[position] ^= 1 << rng.randrange(8)
        return bytes(out)

    return flip


def overwrite_run(fill: int | None, length: int = 16) -> Mutation:
    def run(data: bytes, rng: random.Random) -> bytes:
        if len(data) <= 12 + length:
            return data
        position = rng.randrange(12, len(data) - length)
        block = (
            bytes(rng.randrange(256) for _ in range(length))
            if fill is None
            else bytes([fill] * length)
        )
        return data[:position] + block + data[position + length :]

    return run


def duplicate_run(data: bytes, rng: random.Random) -> bytes:
    if len(data) < 64:
        return data + data[12:]
    start = rng.randrange(12, len(data) - 32)
    length = rng.randrange(16, min(4096, len(data) - start))
    return data[: start + length] + data[start : start + length] + data[start + length :]


def delete_run(data: bytes, rng: random.Random) -> bytes:
    if len(data) < 64:
        return data[:12] + data[20:]
    start = rng.randrange(12, len(data) - 32)
    return data[:start] + data[start + rng.randrange(1, min(512, len(data) - start)) :]


GENERIC: dict[str, Mutation] = {
    "cut-12": truncate(12),
    "cut-20": truncate(20),
    "cut-50": truncate(50),
    "cut-100": truncate(100),
    "cut-300": truncate(300),
    "cut-25%": truncate(0.25),
    "cut-50%": truncate(0.5),
    "cut-90%": truncate(0.9),
    "cut-last": truncate(-1 + 10**9),  # all but the last byte
    "flip-1": flip_bits(1),
    "flip-4": flip_bits(4),
    "flip-32": flip_bits(32),
    "flip-head-2": flip_bits(2, 12, 80),
    "flip-head-8": flip_bits(8, 0, 200),
    "zeros": overwrite_run(0x00),
    "ones": overwrite_run(0xFF),
    "noise": overwrite_run(None, 64),
    "duplicate": duplicate_run,
    "delete": delete_run,
}
QUICK_GENERIC = ("cut-50", "cut-50%", "flip-4", "flip-head-2", "noise", "delete")


# --- structure-aware header forging ------------------------------------------------------


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], 8
    while offset + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        kind = data[offset + 4 : offset + 8]
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def png_build(chunks: list[tuple[bytes, bytes]], good_crc: bool = True) -> bytes:
    out = bytearray(b"\x89PNG\r\n\x1a\n")
    for kind, body in chunks:
        crc = zlib.crc32(kind + body) if good_crc else 0xDEADBEEF
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
    return bytes(out)


def png_ihdr(**fields: int) -> Mutation:
    names = ("width", "height", "depth", "colour", "compression", "filter", "interlace")

    def forge(data: bytes, _: random.Random) -> bytes:
        chunks = png_chunks(data)
        values = dict(zip(names, struct.unpack(">IIBBBBB", chunks[0][1][:13]), strict=True))
        values.update(fields)
        chunks[0] = (b"IHDR", struct.pack(">IIBBBBB", *(values[n] for n in names)))
        return png_build(chunks)

    return forge


def png_edit(edit: Callable[[list[tuple[bytes, bytes]]], list[tuple[bytes, bytes]]]) -> Mutation:
    return lambda data, _: png_build(edit(png_chunks(data)))


PNG_FORGERIES: dict[str, Mutation] = {
    "ihdr-zero-width": png_ihdr(width=0),
    "ihdr-huge-width": png_ihdr(width=0x7FFFFFFF),
    "ihdr-tall": png_ihdr(height=90_000),
    "ihdr-depth-3": png_ihdr(depth=3),
    "ihdr-depth-16": png_ihdr(depth=16),
    "ihdr-colour-7": png_ihdr(colour=7),
    "ihdr-palette": png_ihdr(colour=3),
    "ihdr-interlace-2": png_ihdr(interlace=2),
    "ihdr-interlaced": png_ihdr(interlace=1),
    "bad-crc": lambda data, _: png_build(png_chunks(data), good_crc=False),
    "no-idat": png_edit(lambda c: [x for x in c if x[0] != b"IDAT"]),
    "no-iend": png_edit(lambda c: [x for x in c if x[0] != b"IEND"]),
    "two-ihdr": png_edit(lambda c: [c[0], *c]),
    "empty-idat": png_edit(lambda c: [(k, b"" if k == b"IDAT" else v) for k, v in c]),
    "long-plte": png_edit(lambda c: [c[0], (b"PLTE", bytes(3 * 300)), *c[1:]]),
    "bad-iccp": png_edit(lambda c: [c[0], (b"iCCP", b"x\x00\x00" + b"garbage" * 50), *c[1:]]),
    "bad-exif": png_edit(lambda c: [c[0], (b"eXIf", b"MM\x00*\xff\xff\xff\xff"), *c[1:]]),
    "huge-length": lambda data, _: data[:8] + b"\x7f\xff\xff\xff" + data[12:],
}


def jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    """(offset of the 0xFF marker, marker) for every segment before the scan data."""
    segments, offset = [], 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        segments.append((offset, marker))
        if marker == 0xDA:
            break
        (length,) = struct.unpack_from(">H", data, offset + 2)
        offset += 2 + length
    return segments


def jpeg_patch(marker_set: set[int], relative: int, value: bytes) -> Mutation:
    """Overwrite bytes at `relative` from the first segment whose marker is in the set."""

    def forge(data: bytes, _: random.Random) -> bytes:
        for offset, marker in jpeg_segments(data):
            if marker in marker_set:
                at = offset + relative
                return data[:at] + value + data[at + len(value) :]
        return data

    return forge


def jpeg_drop(marker_set: set[int]) -> Mutation:
    def forge(data: bytes, _: random.Random) -> bytes:
        out, previous = bytearray(data[:2]), 2
        for offset, marker in jpeg_segments(data):
            out += data[previous:offset]
            (length,) = struct.unpack_from(">H", data, offset + 2)
            previous = offset + 2 + length if marker != 0xDA else offset
            if marker not in marker_set or marker == 0xDA:
                out += data[offset:previous]
        out += data[previous:]
        return bytes(out)

    return forge


SOF = {0xC0, 0xC1, 0xC2}
JPEG_FORGERIES: dict[str, Mutation] = {
    "sof-zero-height": jpeg_patch(SOF, 5, b"\x00\x00"),
    "sof-zero-width": jpeg_patch(SOF, 7, b"\x00\x00"),
    "sof-65000-wide": jpeg_patch(SOF, 7, struct.pack(">H", 65000)),
    "sof-precision-12": jpeg_patch(SOF, 4, b"\x0c"),
    "sof-precision-16": jpeg_patch(SOF, 4, b"\x10"),
    "sof-no-components": jpeg_patch(SOF, 9, b"\x00"),
    "sof-255-components": jpeg_patch(SOF, 9, b"\xff"),
    "sof-sampling-0": jpeg_patch(SOF, 11, b"\x00"),
    "sof-sampling-ff": jpeg_patch(SOF, 11, b"\xff"),
    "sof-bad-quant-table": jpeg_patch(SOF, 12, b"\x07"),
    "sof-to-sof3": jpeg_patch(SOF, 1, b"\xc3"),
    "sof-to-sof9": jpeg_patch(SOF, 1, b"\xc9"),
    "sos-bad-component": jpeg_patch({0xDA}, 5, b"\x09"),
    "sos-no-components": jpeg_patch({0xDA}, 4, b"\x00"),
    "dqt-bad-id": jpeg_patch({0xDB}, 4, b"\x0f"),
    "dht-bad-counts": jpeg_patch({0xC4}, 5, b"\xff" * 16),
    "app1-long": jpeg_patch({0xE1}, 2, b"\xff\xff"),
    "app-short": jpeg_patch({0xE0, 0xE1}, 2, b"\x00\x01"),
    "no-dht": jpeg_drop({0xC4}),
    "no-dqt": jpeg_drop({0xDB}),
    "no-sof": jpeg_drop(SOF),
    "early-eoi": lambda data, _: data[: len(data) // 3] + b"\xff\xd9",
    "double-soi": lambda data, _: data[:2] + data,
    "restart-markers": lambda data, _: data[:-2] + b"\xff\xd0" * 64 + b"\xff\xd9",
}


def gif_patch(offset: int, value: bytes) -> Mutation:
    return lambda data, _: data[:offset] + value + data[offset + len(value) :]


def gif_first_frame(data: bytes) -> int:
    """Offset of the first image descriptor (0x2C), skipping palette and extensions."""
    offset = 13
    if data[10] & 0x80:
        offset += 3 * (2 << (data[10] & 7))
    while offset < len(data) and data[offset] == 0x21:
        offset += 2
        while offset < len(data) and data[offset]:
            offset += data[offset] + 1
        offset += 1
    return offset


def gif_frame_patch(relative: int, value: bytes) -> Mutation:
    def forge(data: bytes, _: random.Random) -> bytes:
        at = gif_first_frame(data) + relative
        return data[:at] + value + data[at + len(value) :]

    return forge


GIF_FORGERIES: dict[str, Mutation] = {
    "screen-0x0": gif_patch(6, b"\x00\x00\x00\x00"),
    "screen-max": gif_patch(6, b"\xff\xff\xff\xff"),
    "no-global-palette": gif_patch(10, b"\x00"),
    "frame-outside-screen": gif_frame_patch(1, struct.pack("<HH", 60000, 60000)),
    "frame-huge": gif_frame_patch(5, struct.pack("<HH", 65535, 65535)),
    "frame-zero": gif_frame_patch(5, b"\x00\x00\x00\x00"),
    "lzw-min-code-0": gif_frame_patch(10, b"\x00"),
    "lzw-min-code-12": gif_frame_patch(10, b"\x0c"),
    "no-trailer": lambda data, _: data[:-1],
    "garbage-trailer": lambda data, _: data[:-1] + b"\x21\xff" + b"\x00" * 3,
}


def webp_field(offset: int, value: bytes) -> Mutation:
    return lambda data, _: data[:offset] + value + data[offset + len(value) :]


WEBP_FORGERIES: dict[str, Mutation] = {
    "riff-size-huge": webp_field(4, b"\xff\xff\xff\x7f"),
    "riff-size-small": webp_field(4, b"\x04\x00\x00\x00"),
    "chunk-size-huge": webp_field(16, b"\xff\xff\xff\x7f"),
    "chunk-size-zero": webp_field(16, b"\x00\x00\x00\x00"),
    "chunk-to-vp8x": webp_field(12, b"VP8X"),
    "chunk-to-vp8l": webp_field(12, b"VP8L"),
    "chunk-to-alph": webp_field(12, b"ALPH"),
    "chunk-unknown": webp_field(12, b"ZZZZ"),
}


def tiff_entries(data: bytes) -> tuple[str, int, list[int]]:
    """(byte order, first IFD offset, offsets of its 12-byte entries)."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    if ifd + 2 > len(data):
        return order, ifd, []
    (count,) = struct.unpack_from(order + "H", data, ifd)
    return order, ifd, [ifd + 2 + 12 * i for i in range(count) if ifd + 14 + 12 * i <= len(data)]


def tiff_tag(tag: int, value: int) -> Mutation:
    """Set a tag's (inline, first) value, keeping its type."""

    def forge(data: bytes, _: random.Random) -> bytes:
        order, _, entries = tiff_entries(data)
        out = bytearray(data)
        for at in entries:
            entry_tag, kind, _ = struct.unpack_from(order + "HHI", data, at)
            if entry_tag == tag:
                if kind == 3:
                    struct.pack_into(order + "H", out, at + 8, value & 0xFFFF)
                else:
                    struct.pack_into(order + "I", out, at + 8, value & 0xFFFFFFFF)
        return bytes(out)

    return forge


def tiff_ifd(mutate: Callable[[bytearray, str, int], None]) -> Mutation:
    def forge(data: bytes, _: random.Random) -> bytes:
        order, ifd, _ = tiff_entries(data)
        out = bytearray(data)
        mutate(out, order, ifd)
        return bytes(out)

    return forge


def _entry_count(value: int) -> Callable[[bytearray, str, int], None]:
    def mutate(out: bytearray, order: str, ifd: int) -> None:
        if ifd + 2 <= len(out):
            struct.pack_into(order + "H", out, ifd, value)

    return mutate


def _self_loop(out: bytearray, order: str, ifd: int) -> None:
    if ifd + 2 > len(out):
        return
    (count,) = struct.unpack_from(order + "H", out, ifd)
    nxt = ifd + 2 + 12 * count
    if nxt + 4 <= len(out):
        struct.pack_into(order + "I", out, nxt, ifd)


TIFF_FORGERIES: dict[str, Mutation] = {
    "ifd-beyond-eof": lambda data, _: (
        data[:4] + struct.pack("<I", 0x7FFFFFF0) + data[8:]
        if data[:2] == b"II"
        else data[:4] + struct.pack(">I", 0x7FFFFFF0) + data[8:]
    ),
    "ifd-zero-entries": tiff_ifd(_entry_count(0)),
    "ifd-65535-entries": tiff_ifd(_entry_count(0xFFFF)),
    "ifd-loop": tiff_ifd(_self_loop),
    "width-0": tiff_tag(256, 0),
    "width-huge": tiff_tag(256, 0xFFFFFFFF),
    "height-huge": tiff_tag(257, 1_000_000),
    "bits-0": tiff_tag(258, 0),
    "bits-3": tiff_tag(258, 3),
    "bits-64": tiff_tag(258, 64),
    "compression-99": tiff_tag(259, 99),
    "compression-jpeg": tiff_tag(259, 7),
    "photometric-cielab": tiff_tag(262, 8),
    "photometric-palette": tiff_tag(262, 3),
    "strip-offset-eof": tiff_tag(273, 0x7FFFFFF0),
    "samples-0": tiff_tag(277, 0),
    "samples-100": tiff_tag(277, 100),
    "rows-per-strip-0": tiff_tag(278, 0),
    "strip-bytes-huge": tiff_tag(279, 0x7FFFFFF0),
    "tile-width-0": tiff_tag(322, 0),
    "tile-width-3": tiff_tag(322, 3),
    "sample-format-float": tiff_tag(339, 3),
    "predictor-7": tiff_tag(317, 7),
}

SVG_FORGERIES: dict[str, bytes] = {
    "unclosed": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect',
    "invalid-utf8": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"\xff\xfe<g/></svg>",
    "nul-later": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    + b" " * 5000
    + b"\x00</svg>",
    "negative-size": b'<svg xmlns="http://www.w3.org/2000/svg" width="-10" height="-10"/>',
    "zero-size": b'<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"/>',
    "no-namespace": b'<svg width="10" height="10"><rect width="5" height="5"/></svg>',
    "percent-size": b'<svg xmlns="http://www.w3.org/2000/svg" width="100%" height="50%"/>',
    "em-size": b'<svg xmlns="http://www.w3.org/2000/svg" width="1e38em" height="3em"/>',
    "huge-path": b'<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50"><path d="M0 0 '
    + b"L1e38 1e38 L-1e38 5 " * 200
    + b'Z"/></svg>',
    "gradient-loop": b'<svg xmlns="http://www.w3.org/2000/svg" '
    b'xmlns:xlink="http://www.w3.org/1999/xlink" width="50" height="50"><defs>'
    b'<linearGradient id="a" xlink:href="#b"/><linearGradient id="b" xlink:href="#a"/>'
    b'</defs><rect width="50" height="50" fill="url(#a)"/></svg>',
    "pattern-loop": b'<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50"><defs>'
    b'<pattern id="p" width="10" height="10"><rect width="10" height="10" fill="url(#p)"/>'
    b'</pattern></defs><rect width="50" height="50" fill="url(#p)"/></svg>',
    "use-self": b'<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50">'
    b'<g id="g"><use href="#g"/></g></svg>',
    "filter-huge-blur": b'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200">'
    b'<filter id="f"><feGaussianBlur stdDeviation="1e6"/></filter>'
    b'<rect width="200" height="200" fill="blue" filter="url(#f)"/></svg>',
    "filter-huge-region": b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b'<filter id="f" x="-1e7" y="-1e7" width="1e8" height="1e8"><feFlood flood-color="red"/>'
    b'</filter><rect width="10" height="10" filter="url(#f)"/></svg>',
    "text-huge-font": b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b'<text font-size="1e30" y="50">x</text></svg>',
    "bom-utf16": "\ufeff<svg xmlns='http://www.w3.org/2000/svg' width='9' height='9'/>".encode(
        "utf-16"
    ),
}


# --- sources -----------------------------------------------------------------------------


def corpus_sources() -> dict[str, bytes]:
    names = [
        "jpeg-small-nikon-p6000-gps.jpg",
        "jpeg-adobergb-icc-sample.jpg",
        "jpeg-cmyk-swop-canon300d.jpg",
        "orientation/Landscape_6.jpg",
        "png-palette-8bit.png",
        "png-rgb16.png",
        "png-rgba-opaque-bird.png",
        "gif-animated-10f.gif",
        "webp-alpha.webp",
        "webp-animated-10f.webp",
        "webp-lossy-photo.webp",
        "tiff-rgb16-adobergb-fujixt2.tiff",
        "avif-olympus-epl8.avif",
        "svg-libvips-logo.svg",
        "svg-w3c-struct-image-04-t.svg",
        "heic-iphone11-displayp3-gps.heic",
    ]
    return {f"corpus/{name}": (CORPUS / name).read_bytes() for name in names}


def animation(suffix: str, **options: object) -> bytes:
    frames = [synthetic(24, 12, seed=40 + i) for i in range(3)]
    strip = pyvips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", 12)
    return encode(strip, suffix, **options)


def synthetic_sources() -> dict[str, bytes]:
    rgb, rgba = synthetic(40, 30, seed=7), synthetic(33, 17, bands=4, seed=8)
    grey = synthetic(29, 31, bands=1, seed=9)
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
        b'<defs><linearGradient id="g"><stop offset="0" stop-color="#f00"/>'
        b'<stop offset="1" stop-color="#00f"/></linearGradient></defs>'
        b'<rect width="64" height="48" fill="url(#g)"/><circle cx="20" cy="20" r="15"/>'
        b'<text x="5" y="40" font-size="12">imaged</text></svg>'
    )
    sources = {
        "jpeg-baseline": encode(rgb, ".jpg"),
        "jpeg-progressive": encode(rgb, ".jpg", interlace=True),
        "jpeg-444-restart": encode(rgb, ".jpg", subsample_mode="off", restart_interval=1),
        "jpeg-grey": encode(grey, ".jpg"),
        "png-rgb": encode(rgb, ".png"),
        "png-rgba-interlaced": encode(rgba, ".png", interlace=True),
        "png-16bit": encode(rgb.cast("ushort") * 256, ".png"),
        "png-palette": encode(rgb, ".png", palette=True),
        "png-1bit": encode(grey, ".png", bitdepth=1),
        "gif": encode(rgb, ".gif"),
        "gif-animated": animation(".gif"),
        "webp-lossy": encode(rgb, ".webp", keep="none"),
        "webp-lossless-alpha": encode(rgba, ".webp", lossless=True, keep="none"),
        "webp-animated": animation(".webp"),
        "tiff-lzw": encode(rgb, ".tif", compression="lzw", predictor="horizontal"),
        "tiff-deflate-alpha": encode(rgba, ".tif", compression="deflate"),
        "tiff-jpeg-tiled": encode(rgb, ".tif", compression="jpeg", tile=True, tile_width=16) + b"",
        "tiff-multipage": animation(".tif"),
        "tiff-big-endian": encode(rgb, ".tif", compression="none", bigtiff=False),
        "avif": encode(rgb, ".avif"),
        "svg": svg,
    }
    return sources


FORGERIES: dict[str, dict[str, Mutation]] = {
    "png": PNG_FORGERIES,
    "jpeg": JPEG_FORGERIES,
    "gif": GIF_FORGERIES,
    "webp": WEBP_FORGERIES,
    "tiff": TIFF_FORGERIES,
}


def variants(sources: dict[str, bytes], generic: tuple[str, ...] | None) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for source, data in sources.items():
        mutations = dict(GENERIC) if generic is None else {k: GENERIC[k] for k in generic}
        mutations.update(FORGERIES.get(detect(data) or "", {}))
        for mutation_name, mutate in mutations.items():
            name = f"{source}:{mutation_name}"
            out[name] = mutate(data, random.Random(name))
    return out


# --- animations ------------------------------------------------------------------------------


def cuts(data: bytes, blocks: list[Block]) -> dict[str, bytes]:
    """`data` cut inside every block: at its start, one byte in, half-way, one byte short."""
    out: dict[str, bytes] = {}
    for index, block in enumerate(blocks):
        points = {"start": block.start, "+1": block.start + 1}
        points.update(half=(block.start + block.end) // 2, end=block.end - 1)
        for where, at in points.items():
            if 0 < at < len(data):
                out[f"cut-{index}-{block.kind}-{where}"] = data[:at]
    return out


def riff_sized(data: bytes) -> bytes:
    """The RIFF size field made to match the (cut or edited) length, as a careless writer
    would: the parser then meets the damage inside the chunks instead of at the header."""
    return data[:4] + struct.pack("<I", max(0, len(data) - 8)) + data[8:]


def animated_cuts(data: bytes) -> dict[str, bytes]:
    if detect(data) == "gif":
        return cuts(data, gif_blocks(data))
    out = cuts(data, webp_blocks(data))
    out.update({f"{name}-sized": riff_sized(body) for name, body in list(out.items())})
    return out


def at_blocks(kind: str, relative: int, value: bytes, which: slice = slice(None)) -> Mutation:
    """Overwrite bytes at `relative` within the selected blocks of `kind`."""

    def forge(data: bytes, _: random.Random) -> bytes:
        parse = gif_blocks if detect(data) == "gif" else webp_blocks
        out = bytearray(data)
        for block in [b for b in parse(data) if b.kind == kind][which]:
            at = block.start + relative
            out[at : at + len(value)] = value
        return bytes(out[: len(data)])

    return forge


def drop_blocks(kind: str) -> Mutation:
    def forge(data: bytes, _: random.Random) -> bytes:
        parse = gif_blocks if detect(data) == "gif" else webp_blocks
        out, previous = bytearray(), 0
        for block in (b for b in parse(data) if b.kind == kind):
            out += data[previous : block.start]
            previous = block.end
        out += data[previous:]
        return riff_sized(bytes(out)) if detect(data) == "webp" else bytes(out)

    return forge


def repeat_frames(data: bytes, _: random.Random) -> bytes:
    """Every frame twice (a GIF's extensions and images after the first image repeated)."""
    blocks = gif_blocks(data)
    first = next(b for b in blocks if b.kind in ("graphic-control", "image-descriptor"))
    body = data[first.start : blocks[-1].start]
    return data[: first.start] + body + body + data[blocks[-1].start :]


LATER = slice(1, None)
ANIMATED_GIF_FORGERIES: dict[str, Mutation] = {
    "later-frames-zero-size": at_blocks("image-descriptor", 5, bytes(4), LATER),
    "later-frames-65535": at_blocks("image-descriptor", 5, b"\xff" * 4, LATER),
    "later-frames-outside": at_blocks(
        "image-descriptor", 1, struct.pack("<HH", 60000, 60000), LATER
    ),
    "later-frames-wide": at_blocks("image-descriptor", 5, struct.pack("<H", 300), LATER),
    "last-frame-huge": at_blocks("image-descriptor", 5, b"\xff" * 4, slice(-1, None)),
    "later-frames-interlaced": at_blocks("image-descriptor", 9, b"\x40", LATER),
    "later-lzw-code-size-0": at_blocks("lzw-code-size", 0, b"\x00", LATER),
    "later-lzw-code-size-12": at_blocks("lzw-code-size", 0, b"\x0c", LATER),
    "zero-delays": at_blocks("graphic-control", 4, b"\x00\x00"),
    "max-delays": at_blocks("graphic-control", 4, b"\xff\xff"),
    "gce-size-0": at_blocks("graphic-control", 2, b"\x00"),
    "gce-disposal-7": at_blocks("graphic-control", 3, b"\x1d"),
    "loop-65535": at_blocks("netscape-loop", 16, b"\xff\xff"),
    "netscape-short": at_blocks("netscape-loop", 14, b"\x02"),
    "netscape-long": at_blocks("netscape-loop", 14, b"\x7f"),
    "no-netscape": drop_blocks("netscape-loop"),
    "no-graphic-control": drop_blocks("graphic-control"),
    "frames-twice": repeat_frames,
}
ANIMATED_WEBP_FORGERIES: dict[str, Mutation] = {
    "anmf-huge": at_blocks("anmf-header", 6, b"\xff" * 6, LATER),
    "anmf-outside": at_blocks("anmf-header", 0, b"\xff" * 6, LATER),
    "anmf-wider-than-canvas": at_blocks("anmf-header", 6, struct.pack("<I", 299)[:3], LATER),
    "anmf-size-mismatch": at_blocks("anmf-header", 6, b"\x00\x00\x00\x00\x00\x00"),
    "anmf-chunk-huge": at_blocks("anmf", 4, b"\xf0\xff\xff\x7f", LATER),
    "anmf-chunk-tiny": at_blocks("anmf", 4, b"\x04\x00\x00\x00", LATER),
    "zero-durations": at_blocks("anmf-header", 12, bytes(3)),
    "max-durations": at_blocks("anmf-header", 12, b"\xff" * 3),
    "loop-65535": at_blocks("anim", 12, b"\xff\xff"),
    "anim-short": at_blocks("anim", 4, b"\x02\x00\x00\x00"),
    "no-anim": drop_blocks("anim"),
    "no-animation-flag": at_blocks("vp8x", 8, b"\x10"),
    "canvas-1x1": at_blocks("vp8x", 12, bytes(6)),
    "canvas-16384": at_blocks("vp8x", 12, struct.pack("<I", 16383)[:3] * 2),
    "frame-chunk-renamed": at_blocks("anmf-vp8l", 0, b"VP8 "),
}
ANIMATED_FORGERIES = {"gif": ANIMATED_GIF_FORGERIES, "webp": ANIMATED_WEBP_FORGERIES}


def animated_sources() -> dict[str, bytes]:
    """Small animations of each kind: libvips-written GIF (transparency) and lossy WebP
    (alpha), and hand-written ones with frames of their own sizes, places and disposal."""
    frames = moving_square(3, 24, 16, alpha=True)
    colours = palette([(200, 30, 30), (30, 200, 30), (30, 30, 200), (250, 250, 250)])
    small = [frame_bitstream(f.crop(0, 0, 12, 8), lossless=True) for f in frames]
    return {
        "anim-gif": encode_animation(frames, ".gif", [30, 0, 70], 3),
        "anim-webp": encode_animation(frames, ".webp", [30, 0, 70], 3),
        "anim-gif-subframes": gif_bytes(24, 16, [
            GifFrame(bytes(i % 4 for i in range(24 * 16)), 24, 16, palette=colours),
            GifFrame(bytes([1] * 48), 8, 6, left=3, top=2, transparent=3, disposal=2,
                     palette=colours),
            GifFrame(bytes([2] * 40), 10, 4, left=12, top=10, disposal=3, palette=colours),
        ], loop=0),
        "anim-webp-subframes": webp_bytes(24, 16, [
            WebpFrame(frame_bitstream(frames[0], lossless=True), 24, 16),
            WebpFrame(small[1], 12, 8, left=4, top=2, blend=True, dispose=True),
            WebpFrame(small[2], 12, 8, left=12, top=8, duration=0),
        ], loop=7),
    }  # fmt: skip


def animated_variants(sources: dict[str, bytes], generic: tuple[str, ...]) -> dict[str, bytes]:
    """Cuts at every block, the animation forgeries and the `generic` mutations of each
    source; inputs that come out byte-identical are sent once."""
    out: dict[str, bytes] = {}
    seen: set[bytes] = set()
    for source, data in sources.items():
        mutations = {k: GENERIC[k] for k in generic} | ANIMATED_FORGERIES[detect(data) or ""]
        cases = {name: mutate(data, random.Random(f"{source}:{name}"))
                 for name, mutate in mutations.items()}  # fmt: skip
        for name, body in (animated_cuts(data) | cases).items():
            if body not in seen:
                seen.add(body)
                out[f"{source}:{name}"] = body
    return out


# --- running the battery -----------------------------------------------------------------


def check_one(
    port: int, index: int, name: str, body: bytes, transforms: list[str] = TRANSFORMS
) -> list[str]:
    problems = []
    targets = [transforms[index % len(transforms)], METADATA]
    for target in targets:
        try:
            r = raw_request(port, "PUT", target, body, timeout=60)
        except OSError as exc:
            problems.append(f"{name} {target}: connection failed: {exc!r}")
            continue
        if r.status == 200:
            if target.startswith("/transform"):
                if r.header("content-type") not in IMAGE_TYPES or not r.body:
                    problems.append(f"{name} {target}: bad 200 {r.headers}")
                elif r.header("content-type") != "application/octet-stream":
                    out = pyvips.Image.new_from_buffer(r.body, "")
                    size = (str(out.width), str(out.height))
                    if size != (r.header("x-image-width"), r.header("x-image-height")):
                        problems.append(f"{name} {target}: headers do not match the image")
                    frames = str(info(r.body).frames)
                    if (r.header("x-image-frames") or "1") != frames:
                        problems.append(f"{name} {target}: X-Image-Frames is not {frames}")
            else:
                body_json = json.loads(r.body) if r.header("content-type") == JSON else None
                if not isinstance(body_json, dict) or "width" not in body_json:
                    problems.append(f"{name} {target}: bad metadata {r.body[:100]!r}")
        elif r.status != 400:
            problems.append(f"{name} {target}: status {r.status} {r.text[:200]}")
        elif (
            r.header("content-type") != TEXT
            or not r.text.startswith("image: ")
            or "Traceback" in r.text
            or len(r.text) > 1000
        ):
            problems.append(f"{name} {target}: bad 400 {r.text[:300]!r}")
    return problems


def run_battery(
    server: ServerProcess, cases: dict[str, bytes], transforms: list[str] = TRANSFORMS
) -> None:
    port = server.port
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [
            pool.submit(check_one, port, index, name, body, transforms)
            for index, (name, body) in enumerate(sorted(cases.items()))
        ]
        problems = [problem for future in futures for problem in future.result()]
    died = server.proc.poll()
    if died is not None:  # say how, with the server's last words
        problems.insert(0, f"the server died (exit status {died}):\n{server.log()[-3000:]}")
    assert not problems, f"{len(problems)} problems, e.g.:\n" + "\n".join(problems[:15])
    assert raw_request(port, "GET", "/healthz").status == 200
    log = server.log()
    assert "internal error" not in log and "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="module")
def battery_server() -> Iterator[ServerProcess]:
    with ServerProcess(["--concurrency", "2"]) as proc:
        yield proc


def test_forged_and_mutated_synthetic_images(battery_server: ServerProcess) -> None:
    cases = variants(synthetic_sources(), QUICK_GENERIC)
    cases.update({f"svg:{name}": body for name, body in SVG_FORGERIES.items()})
    assert len(cases) > 200
    run_battery(battery_server, cases)


@pytest.mark.slow
def test_full_battery_on_synthetic_images(battery_server: ServerProcess) -> None:
    cases = variants(synthetic_sources(), None)
    assert len(cases) > 600
    run_battery(battery_server, cases)


@pytest.mark.slow
def test_full_battery_on_the_corpus(battery_server: ServerProcess) -> None:
    cases = variants(corpus_sources(), None)
    big = (CORPUS / "jpeg-12mp-olympus-ep3.jpg").read_bytes()
    for name in ("cut-50%", "flip-32", "flip-head-8", "sof-65000-wide", "no-dht"):
        mutate = GENERIC.get(name) or JPEG_FORGERIES[name]
        cases[f"corpus/12mp:{name}"] = mutate(big, random.Random(name))
    assert len(cases) > 400
    run_battery(battery_server, cases)


def test_animations_cut_at_every_block_and_forged(battery_server: ServerProcess) -> None:
    cases = animated_variants(animated_sources(), QUICK_GENERIC)
    assert len(cases) > 300
    run_battery(battery_server, cases, ANIMATED_TRANSFORMS)


@pytest.mark.slow
def test_corpus_animations_cut_at_every_block_and_forged(battery_server: ServerProcess) -> None:
    sources = {f"corpus/{n}": (CORPUS / n).read_bytes() for n in ANIMATED_CORPUS}
    cases = animated_variants(sources, tuple(GENERIC))
    assert len(cases) > 400
    run_battery(battery_server, cases, ANIMATED_TRANSFORMS)


ANIMATED_CORPUS = ("gif-animated-10f.gif", "webp-animated-10f.webp")
FRAME_LIMIT = "image: Input image has too many frames"


@pytest.mark.parametrize(
    ("body", "frames", "still"),
    [
        (tiny_gif(3000), 3000, 200),
        (tiny_gif(107_000), 107_000, 200),
        (tiny_webp(3000), 3000, 200),
        # libvips reads a WebP's frame index in quadratic time (12 s for this one, on every
        # route): beyond 10 000 frames a WebP is refused before libvips sees it.
        (tiny_webp(107_000), 107_000, 400),
    ],
    ids=["gif-3000", "gif-107000", "webp-3000", "webp-107000"],
)
def test_frame_counts_far_above_the_limit(
    battery_server: ServerProcess, body: bytes, frames: int, still: int
) -> None:
    """With `animated=true` the frame limit (1000) answers at once, from the header; without
    it only the first frame is decoded (and `pages` counts them all)."""
    port = battery_server.port
    for fmt in ("webp", "gif"):
        r = raw_request(port, "PUT", f"/transform?animated=true&format={fmt}&width=8", body)
        assert (r.status, r.text) == (400, f"{FRAME_LIMIT} ({frames} > 1000)")
    for target in ("/transform?format=webp", "/transform?animated=true&format=jpeg", METADATA):
        r = raw_request(port, "PUT", target, body)
        assert r.status == still, (target, r.text)
        if still == 400:
            assert r.text == f"{FRAME_LIMIT} ({frames} > 10000)"
        elif target == METADATA:
            assert json.loads(r.body)["pages"] == frames
        else:
            assert info(r.body).frames == 1 and r.header("x-image-frames") is None
    assert raw_request(port, "GET", "/healthz").status == 200
