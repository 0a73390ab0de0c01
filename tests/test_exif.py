"""The EXIF reader (`engine/exif.py`) and field mapping (`engine/exif_fields.py`) on blocks
built byte by byte (metadata.md, "EXIF")."""

from __future__ import annotations

import io
import math
import random
import struct
import time
from collections.abc import Sequence
from typing import Any

import exifread
import pytest
import pyvips
from exifread.utils import Ratio

from imaged.engine import exif
from imaged.engine.exif_fields import exif_object
from tests.exif_blob import (
    ASCII,
    BYTE,
    LONG,
    SBYTE,
    SHORT,
    SLONG,
    SSHORT,
    Entry,
    ascii_entry,
    every_field,
    rational,
    short,
    srational,
    tiff,
    undefined,
)
from tests.serverproc import CORPUS


def fields(
    image: Sequence[Entry] = (),
    photo: Sequence[Entry] | None = None,
    gps: Sequence[Entry] | None = None,
    **kwargs: bool,
) -> dict[str, Any]:
    return exif_object(tiff(image, photo, gps, **kwargs))


def value(entry: Entry, **kwargs: bool) -> exif.Value:
    """What the reader decodes for one IFD0 entry."""
    return exif.parse(tiff([entry], **kwargs)).image.get(entry.tag)


# --- header checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (b"JFIF\0\0II*\0\x08\0\0\0\0\0", 'buffer should start with "Exif", "MM" or "II".'),
        (b"", 'buffer should start with "Exif", "MM" or "II".'),
        (b"Exif\0\0IM*\0\x08\0\0\0\0\0", "expected byte order marker."),
        (b"Exif\0\0MI\0*\0\0\0\x08\0\0", "expected byte order marker."),
        (b"Exif\0\0II+\0\x08\0\0\0\0\0", "expected 0x002A."),
        (b"Exif\0\0MM\0", "expected 0x002A."),
        (b"Exif\0\0II*\0\x08\0", "Ends before ifdOffset"),
        (b"II*\0\x08\0\0\0", "Ends before ifdOffset"),
        (b"II*\0\x04\0\0\0\0\0\0\0", "ifdOffset < 8"),
        (b"Exif\0\0MM\0*\0\0\0\x01\0\0\0\0", "ifdOffset < 8"),
    ],
)
def test_header_errors(block: bytes, message: str) -> None:
    with pytest.raises(exif.InvalidExif) as caught:
        exif.parse(block)
    assert str(caught.value) == f"Invalid EXIF data: {message}"


def test_prefix_and_byte_orders_are_accepted() -> None:
    make = [ascii_entry(0x010F, "Canon")]
    for big in (False, True):
        for prefix in (False, True):
            parsed = exif.parse(tiff(make, big_endian=big, prefix=prefix))
            assert parsed.big_endian is big
            assert parsed.image.get(0x010F) == "Canon"


# --- value decoding ------------------------------------------------------------------------


def test_ascii_loses_exactly_one_trailing_nul() -> None:
    assert value(ascii_entry(0x010F, "abcd")) == "abcd"
    assert value(ascii_entry(0x010F, "abcd", nul=False)) == "abcd"
    assert value(ascii_entry(0x010F, "abcd\0")) == "abcd\0"
    assert value(ascii_entry(0x010F, "ab\0cd ")) == "ab\0cd "
    assert value(ascii_entry(0x010F, "")) == ""


def test_ascii_with_high_bytes_stays_bytes() -> None:
    assert value(ascii_entry(0x010F, "Grüße".encode())) == "Grüße".encode() + b"\0"
    assert value(ascii_entry(0x010F, "Grüß".encode("latin-1"))) == b"Gr\xfc\xdf\0"


def test_numbers_scalars_lists_and_signs() -> None:
    assert value(short(0x0112, 6)) == 6
    assert value(short(0x0112, 1, 2, 3)) == [1, 2, 3]
    assert value(Entry(0x0112, SHORT, [])) == []
    assert value(Entry(0x0112, BYTE, [200])) == 200
    assert value(Entry(0x0112, SBYTE, [-3, 4])) == [-3, 4]
    assert value(Entry(0x0112, SSHORT, [-300])) == -300
    assert value(Entry(0x0112, SLONG, [-70000])) == -70000
    assert value(Entry(0x0112, LONG, [4000000000])) == 4000000000
    assert value(rational(0x829A, (1, 250))) == 0.004
    assert value(srational(0x9204, (-1, 3))) == -1 / 3
    assert value(rational(0x829A, (1, 3), (2, 4))) == [1 / 3, 0.5]
    for big in (False, True):
        assert value(short(0x0112, 6), big_endian=big) == 6
        assert value(rational(0x829A, (1, 250)), big_endian=big) == 0.004


def test_division_by_zero_gives_infinities_and_nan() -> None:
    assert value(rational(0x829A, (1, 0))) == math.inf
    assert value(srational(0x829A, (-1, 0))) == -math.inf
    nan = value(rational(0x829A, (0, 0)))
    assert isinstance(nan, float) and math.isnan(nan)


def test_undefined_is_bytes_even_when_long() -> None:
    data = b"ASCII\0\0\0" + b"x" * 1500
    assert value(undefined(0x9286, data)) == data
    assert value(undefined(0x9286, b"ab")) == b"ab"


@pytest.mark.parametrize("type_code", [0, 11, 12, 13, 99, 65535])
def test_unknown_type_codes_are_unreadable(type_code: int) -> None:
    assert value(Entry(0x010F, type_code, b"\0\0\0\x01", count=1)) is None


def test_values_beyond_the_block_are_unreadable() -> None:
    block = bytearray(tiff([rational(0x829A, (1, 250)), ascii_entry(0x010F, "Canon EOS")]))
    whole = exif.parse(bytes(block))
    assert whole.image.get(0x829A) == 0.004
    cut = exif.parse(bytes(block[:-4]))  # the last value (the rational) loses 4 bytes
    assert cut.image.get(0x829A) is None
    assert cut.image.get(0x010F) == "Canon EOS"


def test_huge_counts_and_offsets_are_unreadable_and_cheap() -> None:
    block = bytearray(tiff([ascii_entry(0x010F, "Canon EOS"), short(0x0112, 6, 6, 6)]))
    start = 6 + 8 + 2  # first entry (0x010F) of IFD0
    struct.pack_into("<I", block, start + 4, 0xFFFFFFFF)  # count
    struct.pack_into("<I", block, start + 12 + 8, 0xFFFFFFF0)  # offset of the SHORT list
    began = time.perf_counter()
    parsed = exif.parse(bytes(block))
    assert parsed.image.get(0x010F) is None
    assert parsed.image.get(0x0112) is None
    assert time.perf_counter() - began < 0.05


def test_truncated_directory_is_unreadable_but_the_others_are_read() -> None:
    block = bytearray(tiff([ascii_entry(0x010F, "Canon")], [rational(0x829A, (1, 250))]))
    exif_ifd = struct.unpack_from("<I", block, 6 + 8 + 2 + 12 * 1 + 8)[0]
    parsed = exif.parse(bytes(block))
    assert parsed.photo.get(0x829A) == 0.004
    struct.pack_into("<H", block, 6 + exif_ifd, 5000)  # entry count past the end
    parsed = exif.parse(bytes(block))
    assert parsed.image.get(0x010F) == "Canon"
    assert parsed.photo.get(0x829A) is None
    assert exif_object(bytes(block)) == {"make": "Canon"}


def test_pointers_that_loop_back_are_unreadable() -> None:
    # The Exif pointer aims at IFD0 itself; the GPS pointer at the Exif IFD.
    block = tiff([ascii_entry(0x010F, "Canon"), Entry(0x8769, LONG, [8])])
    parsed = exif.parse(block)
    assert parsed.image.get(0x010F) == "Canon"
    assert 0x010F not in parsed.photo
    assert exif_object(block) == {"make": "Canon"}


def test_exif_and_gps_pointers_may_share_a_directory() -> None:
    """Two siblings pointing at one IFD is not a loop: it is read for both."""
    shared = [rational(0x0006, (100, 1)), rational(0x829A, (1, 250))]  # GPSAltitude, Exposure
    block = bytearray(tiff([short(0x0112, 1)], shared, [short(0x0005, 0)]))
    base = 6
    exif_offset = exif.parse(bytes(block)).image.get(0x8769)
    count = struct.unpack_from("<H", block, base + 8)[0]
    for index in range(count):
        entry = base + 8 + 2 + 12 * index
        if struct.unpack_from("<H", block, entry)[0] == 0x8825:
            struct.pack_into("<I", block, entry + 8, exif_offset)
    fields = exif_object(bytes(block))
    assert fields["exposure_time"] == 0.004
    assert fields["altitude"] == 100


@pytest.mark.parametrize(
    ("type_code", "count", "payload"),
    [
        (LONG, 1, struct.pack("<I", 0)),
        (SSHORT, 1, struct.pack("<hh", -8, 0)),
        (SHORT, 2, None),  # two SHORTs: a list, not a scalar
        (ASCII, 4, b"26\0\0"),
    ],
)
def test_sub_ifd_needs_a_positive_integer_pointer(
    type_code: int, count: int, payload: bytes | None
) -> None:
    block = bytearray(tiff([short(0x0112, 1)], [rational(0x829A, (1, 250))]))
    entry = 6 + 8 + 2 + 12  # IFD0's second entry: the Exif pointer
    assert exif.parse(bytes(block)).photo.get(0x829A) == 0.004
    offset = struct.unpack_from("<I", block, entry + 8)[0]
    struct.pack_into("<HHI", block, entry, 0x8769, type_code, count)
    block[entry + 8 : entry + 12] = payload or struct.pack("<HH", offset, offset)
    assert exif.parse(bytes(block)).photo.get(0x829A) is None


def test_pointer_as_integral_rational_is_followed() -> None:
    good = tiff([short(0x0112, 1)], [rational(0x829A, (1, 250))])
    offset = exif.parse(good).image.get(0x8769)
    assert isinstance(offset, int)
    # Rewrite the LONG pointer as a RATIONAL offset/1 stored after the block.
    block = bytearray(good)
    entry = 6 + 8 + 2 + 12
    tail = len(block) - 6
    struct.pack_into("<HHII", block, entry, 0x8769, 5, 1, tail)
    block += struct.pack("<II", offset, 1)
    assert exif.parse(bytes(block)).photo.get(0x829A) == 0.004


def test_bit_flipped_blocks_always_terminate() -> None:
    image = pyvips.Image.new_from_file(str(CORPUS / "jpeg-8mp-iphone6-gps.jpg"))
    original = bytes(image.get("exif-data"))
    rng = random.Random(4)
    began = time.perf_counter()
    for _ in range(300):
        block = bytearray(original)
        for _ in range(rng.randint(1, 12)):
            block[rng.randrange(len(block))] = rng.randrange(256)
        if rng.random() < 0.2:
            block = block[: rng.randrange(len(block))]
        try:
            result = exif_object(bytes(block))
        except exif.InvalidExif:
            continue
        assert isinstance(result, dict)
        assert all(v is not None for v in result.values())
    assert time.perf_counter() - began < 10


# --- field mapping -------------------------------------------------------------------------

DTO, DTD, OFFSET_TIME, OFFSET_ORIGINAL = 0x9003, 0x9004, 0x9010, 0x9011


def test_every_field_in_order() -> None:
    image, photo, gps = every_field()
    assert fields(image, photo, gps) == {
        "make": "Canon",
        "model": "EOS R5",
        "software": "Firmware 1.8",
        "lens_make": "Canon",
        "lens_model": "RF24-105mm",
        "lens_serial": "0000c0ffee",
        "body_serial": "031021000123",
        "unique_id": "abcdef0123456789abcdef0123456789",
        "datetime": "2024-01-15T10:30:00.000-05:00",
        "orientation": "Rotate 90 CW",
        "exposure_time": 0.004,
        "f_number": 2.8,
        "focal_length": 50,
        "focal_length_35mm": 75,
        "iso": 400,
        "flash": "Off",
        "exposure_program": "Aperture priority",
        "exposure_compensation": -2 / 3,
        "metering_mode": "Pattern",
        "white_balance": "Auto",
        "color_space": "sRGB",
        "brightness": 4.5,
        "max_aperture": 2.97,
        "subject_distance": 2.5,
        "light_source": "D65",
        "scene_capture_type": "Night scene",
        "contrast": "Low",
        "saturation": "High",
        "sharpness": "Hard",
        "digital_zoom": 2.35,
        "latitude": 40.4461111,
        "longitude": -74.0058333,
        "altitude": -123.45,
        "speed": 96.56,
        "direction": 123.46,
        "gps_timestamp": "2024-06-15T14:30:45Z",
        "description": "A lake",
        "artist": "Ann",
        "copyright": "(c) Ann",
        "user_comment": "Hello there",
        "rating": 4,
    }
    assert list(fields(image, photo, gps)) == [
        "make", "model", "software", "lens_make", "lens_model", "lens_serial", "body_serial",
        "unique_id", "datetime", "orientation", "exposure_time", "f_number", "focal_length",
        "focal_length_35mm", "iso", "flash", "exposure_program", "exposure_compensation",
        "metering_mode", "white_balance", "color_space", "brightness", "max_aperture",
        "subject_distance", "light_source", "scene_capture_type", "contrast", "saturation",
        "sharpness", "digital_zoom", "latitude", "longitude", "altitude", "speed", "direction",
        "gps_timestamp", "description", "artist", "copyright", "user_comment", "rating",
    ]  # fmt: skip


def test_block_without_mapped_tags_is_empty() -> None:
    assert fields([short(0x0100, 640)]) == {}
    assert fields() == {}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (ascii_entry(0x010F, "Canon  "), "Canon  "),
        (ascii_entry(0x010F, "Canon\0"), "Canon\0"),
        (ascii_entry(0x010F, ""), ""),
        (ascii_entry(0x010F, "Grüße ✓".encode()), "Grüße ✓"),
        (ascii_entry(0x010F, "Grüß".encode("latin-1")), "Grüß"),
        (undefined(0x010F, "Zoë\0".encode()), "Zoë"),
        (undefined(0x010F, b"\xff\xfe\0"), "ÿþ"),
        (short(0x010F, 7), 7),
        (short(0x010F, 1, 2), [1, 2]),
        (rational(0x010F, (1, 4)), 0.25),
        (rational(0x010F, (1, 0)), None),
        (rational(0x010F, (1, 2), (1, 0)), None),
        (Entry(0x010F, 12, b"\0" * 8), None),
    ],
)
def test_raw_rule(entry: Entry, expected: object) -> None:
    assert fields([entry]).get("make") == expected


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (ascii_entry(0xA431, "12345"), "12345"),
        (ascii_entry(0xA431, ""), None),
        (Entry(0xA431, LONG, [987654]), "987654"),
        (rational(0xA431, (1, 2)), "0.5"),
        (short(0xA431, 1, 2), None),
        (undefined(0xA431, "Nº7".encode()), "Nº7"),
        (undefined(0xA431, b"\0"), None),
    ],
)
def test_body_serial(entry: Entry, expected: str | None) -> None:
    assert fields([], [entry]).get("body_serial") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023:07:04 08:09:10", "2023-07-04T08:09:10.000Z"),
        ("0050:01:02 03:04:05", "0050-01-02T03:04:05.000Z"),
        ("2024:02:29 23:59:59", "2024-02-29T23:59:59.000Z"),
        ("2000:02:29 00:00:00", "2000-02-29T00:00:00.000Z"),
        ("0000:00:00 00:00:00", None),
        ("0000:01:01 00:00:00", None),
        ("2023:13:01 00:00:00", None),
        ("2023:00:10 00:00:00", None),
        ("2023:04:31 00:00:00", None),
        ("2023:02:29 00:00:00", None),
        ("1900:02:29 00:00:00", None),
        ("2023:07:00 00:00:00", None),
        ("2023:07:04 24:00:00", None),
        ("2023:07:04 08:60:00", None),
        ("2023:07:04 08:09:60", None),
        ("2023:07:04 08:09:10 ", None),
        ("2023:07:04 08:09:10\n", None),
        ("2023-07-04 08:09:10", None),
        ("2023:7:04 08:09:10", None),
        ("    :  :     :  :  ", None),
    ],
)
def test_datetime_format_and_validity(text: str, expected: str | None) -> None:
    assert fields([], [ascii_entry(DTO, text)]).get("datetime") == expected


def test_datetime_falls_back_to_digitized_only() -> None:
    digitized = ascii_entry(DTD, "2020:05:06 07:08:09")
    assert fields([], [digitized])["datetime"] == "2020-05-06T07:08:09.000Z"
    bad_original = ascii_entry(DTO, "0000:00:00 00:00:00")
    assert fields([], [bad_original, digitized])["datetime"] == "2020-05-06T07:08:09.000Z"
    ifd0_only = [ascii_entry(0x0132, "2020:05:06 07:08:09")]
    assert "datetime" not in fields(ifd0_only, [])
    assert "datetime" not in fields([], [undefined(DTO, b"2020:05:06 07:08:09\0")])


@pytest.mark.parametrize(
    ("offset_time", "offset_original", "suffix"),
    [
        ("+02:00", "-07:00", "+02:00"),
        (None, "-07:00", "-07:00"),
        ("", "-07:00", "-07:00"),
        ("0500", "-07:00", "Z"),
        ("+02:00\0", "-07:00", "Z"),
        ("+2:00", None, "Z"),
        (None, None, "Z"),
    ],
)
def test_datetime_offset(offset_time: str | None, offset_original: str | None, suffix: str) -> None:
    photo = [ascii_entry(DTO, "2024:01:15 10:30:00")]
    if offset_time is not None:
        photo.append(ascii_entry(OFFSET_TIME, offset_time))
    if offset_original is not None:
        photo.append(ascii_entry(OFFSET_ORIGINAL, offset_original))
    assert fields([], photo)["datetime"] == "2024-01-15T10:30:00.000" + suffix


def test_numeric_offset_blocks_the_other_tag_unless_zero() -> None:
    photo = [ascii_entry(DTO, "2024:01:15 10:30:00"), ascii_entry(OFFSET_ORIGINAL, "+01:00")]
    assert fields([], [*photo, short(OFFSET_TIME, 5)])["datetime"].endswith(".000Z")
    assert fields([], [*photo, short(OFFSET_TIME, 0)])["datetime"].endswith("+01:00")


@pytest.mark.parametrize(("code", "text"), [(1, "Horizontal (normal)"), (8, "Rotate 270 CW")])
def test_orientation_text(code: int, text: str) -> None:
    assert fields([short(0x0112, code)])["orientation"] == text


@pytest.mark.parametrize("entry", [short(0x0112, 0), short(0x0112, 9), ascii_entry(0x0112, "6")])
def test_orientation_unlisted_omitted(entry: Entry) -> None:
    assert "orientation" not in fields([entry])


@pytest.mark.parametrize(
    ("key", "tag", "table"),
    [
        ("exposure_program", 0x8822, {0: "Not defined", 8: "Landscape mode", 9: None}),
        ("metering_mode", 0x9207, {0: "Unknown", 6: "Partial", 255: "Other", 7: None}),
        ("white_balance", 0xA403, {0: "Auto", 1: "Manual", 2: None}),
        ("color_space", 0xA001, {1: "sRGB", 2: "Adobe RGB", 65535: "Uncalibrated", 0: None}),
        ("light_source", 0x9208, {3: "Tungsten (incandescent)", 24: "ISO studio tungsten"}),
        ("light_source", 0x9208, {17: "Standard light A", 255: "Other", 5: None, 25: None}),
        ("scene_capture_type", 0xA406, {0: "Standard", 2: "Portrait", 4: None}),
        ("contrast", 0xA408, {0: "Normal", 2: "High", 3: None}),
        ("saturation", 0xA409, {1: "Low", 3: None}),
        ("sharpness", 0xA40A, {0: "Normal", 1: "Soft", 2: "Hard", 3: None}),
    ],
)
def test_enum_texts(key: str, tag: int, table: dict[int, str | None]) -> None:
    for code, text in table.items():
        assert fields([], [short(tag, code)]).get(key) == text, (key, code)
    assert key not in fields([], [ascii_entry(tag, "1")])
    assert key not in fields([], [short(tag, 1, 2)])


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0, "Did not fire"),
        (1, "Fired"),
        (5, "Fired"),
        (9, "Fired"),
        (8, "Did not fire"),
        (16, "Off"),
        (17, "Off"),
        (24, "Auto"),
        (25, "Auto"),
        (89, "Auto"),
    ],
)
def test_flash(code: int, text: str) -> None:
    assert fields([], [short(0x9209, code)])["flash"] == text


def test_numbers_unrounded_and_finite_only() -> None:
    assert fields([], [rational(0x829A, (1, 3))])["exposure_time"] == 0.3333333333333333
    assert "exposure_time" not in fields([], [rational(0x829A, (1, 0))])
    assert "exposure_time" not in fields([], [rational(0x829A, (0, 0))])
    assert "f_number" not in fields([], [rational(0x829D, (28, 10), (1, 1))])
    assert "f_number" not in fields([], [ascii_entry(0x829D, "2.8")])
    assert fields([], [srational(0x9203, (-7, 2))])["brightness"] == -3.5


def test_iso_from_exif_else_ifd0_and_never_a_list() -> None:
    assert fields([short(0x8827, 100)], [short(0x8827, 800)])["iso"] == 800
    assert fields([short(0x8827, 100)], [])["iso"] == 100
    assert "iso" not in fields([], [short(0x8827, 100, 200)])


@pytest.mark.parametrize(
    ("pair", "expected"), [((1, 1), None), ((0, 1), None), ((3, 2), 1.5), ((2001, 1000), 2)]
)
def test_digital_zoom(pair: tuple[int, int], expected: float | None) -> None:
    assert fields([], [rational(0xA404, pair)]).get("digital_zoom") == expected


@pytest.mark.parametrize(
    ("ref", "sign"), [("N", 1), ("S", -1), ("s", 1), ("", 1), ("SS", 1), (None, 1)]
)
def test_latitude_reference(ref: str | None, sign: int) -> None:
    gps = [rational(0x0002, (40, 1), (26, 1), (46, 1))]
    if ref is not None:
        gps.append(ascii_entry(0x0001, ref))
    assert fields([], None, gps)["latitude"] == sign * 40.4461111


@pytest.mark.parametrize(
    "entry",
    [
        rational(0x0004, (74, 1), (0, 1)),
        rational(0x0004, (74, 1), (0, 1), (21, 1), (0, 1)),
        rational(0x0004, (74, 1), (0, 0), (21, 1)),
        rational(0x0004, (74, 1)),
    ],
)
def test_coordinate_needs_three_finite_numbers(entry: Entry) -> None:
    assert "longitude" not in fields([], None, [entry, ascii_entry(0x0003, "W")])


def test_coordinate_rounds_to_seven_places() -> None:
    gps = [rational(0x0004, (11, 1), (53, 1), (3, 1)), ascii_entry(0x0003, "E")]
    assert fields([], None, gps)["longitude"] == 11.8841667
    gps = [rational(0x0004, (74, 1), (0, 1), (21, 1)), ascii_entry(0x0003, "W")]
    assert fields([], None, gps)["longitude"] == -74.0058333


def test_altitude() -> None:
    alt = rational(0x0006, (639591, 1000))
    assert fields([], None, [alt])["altitude"] == 639.59
    assert fields([], None, [alt, Entry(0x0005, BYTE, [0])])["altitude"] == 639.59
    assert fields([], None, [alt, Entry(0x0005, BYTE, [1])])["altitude"] == -639.59
    assert fields([], None, [alt, ascii_entry(0x0005, "1")])["altitude"] == 639.59
    assert "altitude" not in fields([], None, [rational(0x0006, (1, 0))])


@pytest.mark.parametrize(
    ("ref", "expected"), [("M", 96.56), ("N", 111.12), ("K", 60), (None, 60), ("m", 60)]
)
def test_speed_in_kmh(ref: str | None, expected: float) -> None:
    gps = [rational(0x000D, (60, 1))]
    if ref is not None:
        gps.append(ascii_entry(0x000C, ref))
    assert fields([], None, gps)["speed"] == expected
    knots = [rational(0x000D, (30, 1)), ascii_entry(0x000C, "N")]
    assert fields([], None, knots)["speed"] == 55.56


def test_direction_rounded_reference_ignored() -> None:
    gps = [rational(0x0011, (212869, 1000)), ascii_entry(0x0010, "M")]
    assert fields([], None, gps)["direction"] == 212.87


@pytest.mark.parametrize(
    ("date", "time_", "expected"),
    [
        ("2024:06:15", [(14, 1), (30, 1), (45, 1)], "2024-06-15T14:30:45Z"),
        ("2024:06:15", [(7, 1), (5, 1), (599, 100)], "2024-06-15T07:05:05Z"),
        ("2024:6:15", [(0, 1), (0, 1), (0, 1)], "2024-6-15T00:00:00Z"),
        ("junk", [(23, 1), (59, 1), (59, 1)], "junkT23:59:59Z"),
        ("", [(14, 1), (30, 1), (45, 1)], None),
        (None, [(14, 1), (30, 1), (45, 1)], None),
        ("2024:06:15", [(14, 1), (30, 1)], None),
        ("2024:06:15", [(14, 1), (30, 1), (1, 0)], None),
    ],
)
def test_gps_timestamp(
    date: str | None, time_: list[tuple[int, int]], expected: str | None
) -> None:
    gps = [rational(0x0007, *time_)]
    if date is not None:
        gps.append(ascii_entry(0x001D, date))
    assert fields([], None, gps).get("gps_timestamp") == expected


@pytest.mark.parametrize(
    ("data", "big_endian", "expected"),
    [
        (b"ASCII\0\0\0Hello", False, "Hello"),
        (b"ASCII\0\0\0  Hello \0\0\0 ", False, "Hello"),
        (b"UNICODE\0" + "Grüße ✓".encode("utf-16-le"), False, "Grüße ✓"),
        (b"UNICODE\0" + "Grüße ✓".encode("utf-16-be"), True, "Grüße ✓"),
        (b"UNICODE\0" + "Hi".encode("utf-16-be") + b"\0", True, "Hi"),
        (b"\0" * 8 + "Zoë".encode(), False, "Zoë"),
        (b"JIS\0\0\0\0\0" + b"ok\xff", False, "ok\ufffd"),
        (b"ASCII\0\0\0" + b" \0" * 20, False, None),
        (b"ASCII\0\0\0", False, None),
        (b"ASCII\0\0", False, None),
    ],
)
def test_user_comment(data: bytes, big_endian: bool, expected: str | None) -> None:
    assert fields([], [undefined(0x9286, data)], big_endian=big_endian).get("user_comment") == (
        expected
    )


def test_user_comment_as_text() -> None:
    assert fields([], [ascii_entry(0x9286, "  note  ")])["user_comment"] == "note"
    assert "user_comment" not in fields([], [ascii_entry(0x9286, "   ")])
    assert "user_comment" not in fields([], [short(0x9286, 5)])


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (short(0x4746, 0), None),
        (short(0x4746, 1), 1),
        (short(0x4746, 5), 5),
        (short(0x4746, 6), None),
        (rational(0x4746, (7, 2)), None),
        (rational(0x4746, (6, 2)), 3),
    ],
)
def test_rating(entry: Entry, expected: int | None) -> None:
    assert fields([entry]).get("rating") == expected


# --- an independent reader agrees on real files --------------------------------------------


def test_builder_blocks_read_the_same_with_exifread() -> None:
    block = tiff(
        [ascii_entry(0x010F, "Canon"), short(0x0112, 6)],
        [rational(0x829A, (1, 250)), short(0x8827, 400)],
        [ascii_entry(0x0001, "S"), rational(0x0002, (40, 1), (26, 1), (46, 1))],
        prefix=False,
        big_endian=True,
    )
    tags = exifread.process_file(io.BytesIO(block), details=False)
    assert str(tags["Image Make"]) == "Canon"
    assert tags["EXIF ExposureTime"].values[0] == Ratio(1, 250)
    assert [float(v) for v in tags["GPS GPSLatitude"].values] == [40, 26, 46]
    ours = fields([ascii_entry(0x010F, "Canon")], [short(0x8827, 400)], None, big_endian=True)
    assert ours == {"make": "Canon", "iso": 400}
