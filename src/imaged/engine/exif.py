"""A bounded reader for the TIFF structure of an EXIF block (metadata.md, "Parsing model").

Why not exifread (a dependency, used by the tests as an independent reader): its value layer
normalises exactly what the spec pins down. Measured with exifread 3.5.1 on blocks built
byte by byte: ASCII is cut at the first NUL (`"ab\\0cd\\0"` → `"ab"`, the spec keeps
`"ab\\0cd"`); a numeric/UNDEFINED value with 1000 or more items is silently dropped (a
1508-byte UserComment vanished); a value whose bytes lie beyond the block reads as zeros
(`0/0`, `1/0`) instead of being unreadable; type codes 11–13 are decoded although the spec
makes unknown types unreadable; the header checks (0x002A, ifdOffset) are not made. Those
are the raw typed values the field rules work on, so this small reader does the job itself.

Every read is bounds-checked against the block; only IFD0, the Exif sub-IFD and the GPS
sub-IFD are read, each at most once, and values are decoded lazily (only the tags the field
mapping asks for), so time and memory stay proportional to the block size whatever the
counts and offsets say.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

Value = str | bytes | int | float | list[int | float] | None
"""A decoded entry: ASCII text, bytes (UNDEFINED, or ASCII with a byte ≥ 0x80), a number,
a list of numbers, or None (unreadable)."""

ASCII = 2
UNDEFINED = 7
EXIF_POINTER = 0x8769
GPS_POINTER = 0x8825

# Item size per type code 1–10; any other code is unknown (unreadable).
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8}
_INTEGER_CODES = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i"}
_RATIONAL_CODES = {5: "I", 10: "i"}
_ENTRY = 12


class InvalidExif(ValueError):
    """The block is not a TIFF structure at all (one of the spec's "Invalid EXIF data")."""


def _ratio(numerator: int, denominator: int) -> float:
    """numerator ÷ denominator with IEEE semantics (÷0 gives ±Infinity or NaN)."""
    if denominator == 0:
        return math.nan if numerator == 0 else math.copysign(math.inf, numerator)
    return numerator / denominator


class Ifd:
    """One image file directory: tag → entry, values decoded on first use."""

    def __init__(self, block: _Block, entries: dict[int, tuple[int, int, int]]) -> None:
        self._block = block
        self._entries = entries
        self._values: dict[int, Value] = {}

    def __contains__(self, tag: int) -> bool:
        return tag in self._entries

    def get(self, tag: int) -> Value:
        if tag not in self._values:
            entry = self._entries.get(tag)
            self._values[tag] = None if entry is None else self._block.value(*entry)
        return self._values[tag]


EMPTY_IFD_ENTRIES: dict[int, tuple[int, int, int]] = {}


class _Block:
    def __init__(self, data: bytes, base: int, big_endian: bool) -> None:
        self.data = data
        self.base = base
        self.order = ">" if big_endian else "<"

    def u16(self, offset: int) -> int | None:
        if offset < 0 or offset + 2 > len(self.data):
            return None
        return int(struct.unpack_from(self.order + "H", self.data, offset)[0])

    def u32(self, offset: int) -> int | None:
        if offset < 0 or offset + 4 > len(self.data):
            return None
        return int(struct.unpack_from(self.order + "I", self.data, offset)[0])

    def entries(self, offset: int) -> dict[int, tuple[int, int, int]] | None:
        """tag → (type, count, entry offset); None if the directory is truncated."""
        count = self.u16(offset)
        if count is None or offset + 2 + count * _ENTRY > len(self.data):
            return None
        out: dict[int, tuple[int, int, int]] = {}
        fmt = self.order + "HHI"
        for i in range(count):
            entry = offset + 2 + i * _ENTRY
            tag, type_code, n = struct.unpack_from(fmt, self.data, entry)
            out[tag] = (type_code, n, entry)
        return out

    def value(self, type_code: int, count: int, entry: int) -> Value:
        size = _SIZES.get(type_code)
        if size is None:
            return None
        total = size * count
        if total <= 4:
            start = entry + 8
        else:
            pointer = self.u32(entry + 8)
            if pointer is None:
                return None
            start = pointer + self.base
        if start + total > len(self.data):
            return None
        raw = self.data[start : start + total]
        if type_code == ASCII:
            if any(b >= 0x80 for b in raw):
                return raw
            text = raw.decode("ascii")
            return text[:-1] if text.endswith("\0") else text
        if type_code == UNDEFINED:
            return raw
        numbers: list[int | float]
        if type_code in _INTEGER_CODES:
            numbers = list(struct.unpack(f"{self.order}{count}{_INTEGER_CODES[type_code]}", raw))
        else:
            pairs = struct.unpack(f"{self.order}{2 * count}{_RATIONAL_CODES[type_code]}", raw)
            numbers = [_ratio(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]
        return numbers[0] if count == 1 else numbers


@dataclass(frozen=True)
class ExifTags:
    """The three directories of the block (an unreadable one is empty)."""

    big_endian: bool
    image: Ifd
    photo: Ifd
    gps: Ifd


def _positive_integer(value: Value) -> int | None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        return None
    return int(value) if float(value).is_integer() else None


def parse(data: bytes) -> ExifTags:
    """Read IFD0, the Exif and the GPS sub-IFDs; raises InvalidExif for a non-TIFF block."""
    if data[:3] in (b"MM\0", b"II*"):
        base = 0
    elif data[:5] == b"Exif\0":
        base = 6
    else:
        raise InvalidExif('Invalid EXIF data: buffer should start with "Exif", "MM" or "II".')
    marker = data[base : base + 2]
    if marker not in (b"II", b"MM"):
        raise InvalidExif("Invalid EXIF data: expected byte order marker.")
    block = _Block(data, base, big_endian=marker == b"MM")
    if len(data) < base + 4 or block.u16(base + 2) != 0x002A:
        raise InvalidExif("Invalid EXIF data: expected 0x002A.")
    if len(data) <= base + 8:
        raise InvalidExif("Invalid EXIF data: Ends before ifdOffset")
    first = block.u32(base + 4)
    ifd0_offset = (first or 0) + base
    if ifd0_offset < 8:
        raise InvalidExif("Invalid EXIF data: ifdOffset < 8")

    def directory(offset: int | None, ancestors: frozenset[int]) -> Ifd:
        # A pointer back to a directory on the way here (a loop) makes this one unreadable;
        # the Exif and GPS pointers may share a directory (siblings, not a loop).
        entries = None
        if offset is not None and offset not in ancestors:
            entries = block.entries(offset)
        return Ifd(block, entries if entries is not None else EMPTY_IFD_ENTRIES)

    image = directory(ifd0_offset, frozenset())
    sub_offsets = []
    for pointer_tag in (EXIF_POINTER, GPS_POINTER):
        pointer = _positive_integer(image.get(pointer_tag))
        sub_offsets.append(None if pointer is None else pointer + base)
    photo = directory(sub_offsets[0], frozenset({ifd0_offset}))
    gps = directory(sub_offsets[1], frozenset({ifd0_offset}))
    return ExifTags(block.order == ">", image, photo, gps)
