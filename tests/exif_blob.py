"""Build EXIF blocks byte by byte, and images that carry them unchanged.

libvips re-serialises an `exif-data` blob when it saves, so the tests splice the block into
the file themselves: a JPEG APP1 segment (`Exif\\0\\0` + TIFF) or a PNG `eXIf` chunk (bare
TIFF). The loaders hand such a block back byte for byte.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import pyvips

BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL = range(1, 11)
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_PACK = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 11: "f", 12: "d", 13: "I"}


@dataclass(frozen=True)
class Entry:
    """One IFD entry. `values`: bytes for ASCII/UNDEFINED, else numbers or (num, den) pairs.
    `count` overrides the count written (to declare more items than are stored)."""

    tag: int
    type: int
    values: bytes | Sequence[int | float | tuple[int, int]]
    count: int | None = None

    def payload(self, order: str) -> bytes:
        if isinstance(self.values, bytes):
            return self.values
        if self.type in (RATIONAL, SRATIONAL):
            code = "I" if self.type == RATIONAL else "i"
            return b"".join(struct.pack(order + code * 2, *pair) for pair in self.values)  # type: ignore[misc]
        return struct.pack(f"{order}{len(self.values)}{_PACK[self.type]}", *self.values)

    def declared_count(self, order: str) -> int:
        if self.count is not None:
            return self.count
        return len(self.payload(order)) // _SIZES.get(self.type, 1)


def ascii_entry(tag: int, text: str | bytes, nul: bool = True) -> Entry:
    raw = text.encode("latin-1") if isinstance(text, str) else text
    return Entry(tag, ASCII, raw + (b"\0" if nul else b""))


def short(tag: int, *values: int) -> Entry:
    return Entry(tag, SHORT, values)


def rational(tag: int, *pairs: tuple[int, int]) -> Entry:
    return Entry(tag, RATIONAL, pairs)


def srational(tag: int, *pairs: tuple[int, int]) -> Entry:
    return Entry(tag, SRATIONAL, pairs)


def undefined(tag: int, data: bytes) -> Entry:
    return Entry(tag, UNDEFINED, data)


def tiff(
    image: Sequence[Entry] = (),
    exif: Sequence[Entry] | None = None,
    gps: Sequence[Entry] | None = None,
    *,
    big_endian: bool = False,
    prefix: bool = True,
) -> bytes:
    """A TIFF structure (IFD0 at 8, then the Exif and GPS IFDs, then the value area),
    preceded by `Exif\\0\\0` when `prefix`; pointer entries are added to IFD0."""
    order = ">" if big_endian else "<"
    subs = [(tag, list(ifd)) for tag, ifd in ((0x8769, exif), (0x8825, gps)) if ifd is not None]
    sizes = [2 + 12 * (len(image) + len(subs)) + 4] + [2 + 12 * len(e) + 4 for _, e in subs]
    offsets = [8]
    for size in sizes[:-1]:
        offsets.append(offsets[-1] + size)
    data_start = offsets[-1] + sizes[-1]
    pairs = zip(subs, offsets[1:], strict=True)
    pointers = [Entry(tag, LONG, [offset]) for (tag, _), offset in pairs]
    directories = [list(image) + pointers] + [entries for _, entries in subs]
    area = bytearray()
    out = bytearray((b"MM\0*" if big_endian else b"II*\0") + struct.pack(order + "I", 8))
    for entries in directories:
        out += struct.pack(order + "H", len(entries))
        for e in sorted(entries, key=lambda e: e.tag):
            payload = e.payload(order)
            head = struct.pack(order + "HHI", e.tag, e.type, e.declared_count(order))
            if len(payload) <= 4:
                out += head + payload.ljust(4, b"\0")
            else:
                out += head + struct.pack(order + "I", data_start + len(area))
                area += payload
                if len(area) % 2:
                    area += b"\0"
        out += b"\0\0\0\0"
    out += area
    return (b"Exif\0\0" if prefix else b"") + bytes(out)


def every_field() -> tuple[list[Entry], list[Entry], list[Entry]]:
    """(IFD0, Exif, GPS) entries from which every key of the `exif` object is mapped
    (tests/test_exif.py lists the result; the API description test checks its schema)."""
    image = [
        ascii_entry(0x010F, "Canon"),
        ascii_entry(0x0110, "EOS R5"),
        ascii_entry(0x0131, "Firmware 1.8"),
        short(0x0112, 6),
        ascii_entry(0x010E, "A lake"),
        ascii_entry(0x013B, "Ann"),
        ascii_entry(0x8298, "(c) Ann"),
        short(0x4746, 4),
        ascii_entry(0x0132, "2001:01:01 01:01:01"),  # IFD0 DateTime: never used
    ]
    photo = [
        ascii_entry(0xA433, "Canon"),
        ascii_entry(0xA434, "RF24-105mm"),
        ascii_entry(0xA435, "0000c0ffee"),
        ascii_entry(0xA431, "031021000123"),
        undefined(0xA420, b"abcdef0123456789abcdef0123456789\0"),
        ascii_entry(0x9003, "2024:01:15 10:30:00"),  # DateTimeOriginal
        ascii_entry(0x9010, "-05:00"),  # OffsetTime
        rational(0x829A, (1, 250)),
        rational(0x829D, (28, 10)),
        rational(0x920A, (50, 1)),
        short(0xA405, 75),
        short(0x8827, 400),
        short(0x9209, 16),
        short(0x8822, 3),
        srational(0x9204, (-2, 3)),
        short(0x9207, 5),
        short(0xA403, 0),
        short(0xA001, 1),
        srational(0x9203, (45, 10)),
        rational(0x9205, (297, 100)),
        rational(0x9206, (5, 2)),
        short(0x9208, 21),
        short(0xA406, 3),
        short(0xA408, 1),
        short(0xA409, 2),
        short(0xA40A, 2),
        rational(0xA404, (2345, 1000)),
        undefined(0x9286, b"ASCII\0\0\0Hello there  "),
    ]
    gps = [
        ascii_entry(0x0001, "N"),
        rational(0x0002, (40, 1), (26, 1), (46, 1)),
        ascii_entry(0x0003, "W"),
        rational(0x0004, (74, 1), (0, 1), (21, 1)),
        Entry(0x0005, BYTE, [1]),
        rational(0x0006, (12345, 100)),
        ascii_entry(0x000C, "M"),
        rational(0x000D, (60, 1)),
        rational(0x0011, (123456, 1000)),
        rational(0x0007, (14, 1), (30, 1), (455, 10)),
        ascii_entry(0x001D, "2024:06:15"),
    ]
    return image, photo, gps


def plain_jpeg(width: int = 16, height: int = 12, **save: object) -> bytes:
    image = pyvips.Image.black(width, height, bands=3).linear(1, [90, 140, 200]).cast("uchar")
    return bytes(image.copy(interpretation="srgb").jpegsave_buffer(keep="none", **save))


def jpeg_with_app1(payload: bytes, jpeg: bytes | None = None) -> bytes:
    """`jpeg` with an APP1 segment holding `payload` right after SOI."""
    jpeg = jpeg or plain_jpeg()
    assert jpeg[:2] == b"\xff\xd8" and len(payload) <= 65533
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def add_png_exif(png: bytes, block: bytes) -> bytes:
    """`png` with an `eXIf` chunk (a bare TIFF structure) right after IHDR."""
    chunk = struct.pack(">I", len(block)) + b"eXIf" + block
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + block))
    return png[:33] + chunk + png[33:]  # after the signature and IHDR


def png_with_exif(block: bytes, width: int = 8, height: int = 8) -> bytes:
    """A small PNG carrying `block` in an `eXIf` chunk."""
    png = bytes((pyvips.Image.black(width, height, bands=3) + 50).cast("uchar").pngsave_buffer())
    return add_png_exif(png, block)
