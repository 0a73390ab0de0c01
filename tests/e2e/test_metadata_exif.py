"""`exif=true` over HTTP: camera files checked against exifread, and byte-exact EXIF blocks
spliced into JPEG/PNG files (metadata.md, "EXIF")."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import exifread
import httpx
import pytest
import pyvips
from tests.exif_blob import (
    ascii_entry,
    jpeg_with_app1,
    png_with_exif,
    rational,
    short,
    srational,
    tiff,
    undefined,
)
from tests.serverproc import CORPUS

JSON = "application/json; charset=utf-8"
WARNING = "exif: invalid EXIF data ignored"


def metadata(client: httpx.Client, data: bytes, query: str = "exif") -> httpx.Response:
    return client.put(f"/metadata?{query}", content=data)


def exif_of(client: httpx.Client, data: bytes) -> dict[str, Any] | None:
    r = metadata(client, data)
    assert r.status_code == 200, r.text
    assert "x-imaged-warnings" not in r.headers
    fields: dict[str, Any] = json.loads(r.text)
    return fields.get("exif")


# --- real cameras, against exifread -----------------------------------------------------


def exifread_tags(name: str) -> dict[str, Any]:
    with open(CORPUS / name, "rb") as f:
        return dict(exifread.process_file(f, details=False))


def number(tag: Any) -> float:
    v = tag.values[0]
    return v.num / v.den if hasattr(v, "den") else float(v)


def degrees(tag: Any, ref: Any) -> float:
    d, m, s = (v.num / v.den for v in tag.values)
    value = d + m / 60 + s / 3600
    return -value if str(ref) in ("S", "W") else value


CAMERAS = [
    "jpeg-12mp-olympus-ep3.jpg",
    "jpeg-12mp-xiaomi-mi9t-orient6.jpg",
    "jpeg-3mp-canon-sx60-orient6.jpg",
    "jpeg-8mp-iphone6-gps.jpg",
    "jpeg-9mp-nokia83-gps.jpg",
    "jpeg-small-nikon-p6000-gps.jpg",
    "jpeg-cmyk-swop-canon300d.jpg",
]


@pytest.mark.parametrize("name", CAMERAS)
def test_camera_fields_match_exifread(client: httpx.Client, name: str) -> None:
    exif = exif_of(client, (CORPUS / name).read_bytes())
    assert exif is not None
    tags = exifread_tags(name)
    assert exif["make"] == tags["Image Make"].values
    assert exif["model"] == tags["Image Model"].values
    stamp = tags["EXIF DateTimeOriginal"].values
    date, time = stamp.split(" ")
    offset = tags.get("EXIF OffsetTime") or tags.get("EXIF OffsetTimeOriginal")
    suffix = offset.values if offset else "Z"
    assert exif["datetime"] == f"{date.replace(':', '-')}T{time}.000{suffix}"
    assert exif["exposure_time"] == number(tags["EXIF ExposureTime"])
    assert exif["f_number"] == number(tags["EXIF FNumber"])
    assert exif["focal_length"] == number(tags["EXIF FocalLength"])
    assert exif["iso"] == tags["EXIF ISOSpeedRatings"].values[0]
    orientation = tags["Image Orientation"].values[0]
    assert exif["orientation"] == {1: "Horizontal (normal)", 6: "Rotate 90 CW"}[orientation]
    if "GPS GPSLatitude" in tags:
        lat = degrees(tags["GPS GPSLatitude"], tags["GPS GPSLatitudeRef"])
        lon = degrees(tags["GPS GPSLongitude"], tags["GPS GPSLongitudeRef"])
        assert exif["latitude"] == pytest.approx(lat, abs=1e-7)
        assert exif["longitude"] == pytest.approx(lon, abs=1e-7)
    else:
        assert "latitude" not in exif


# Degrees/minutes/seconds as listed in the corpus MANIFEST (rounded to whole seconds).
MANIFEST_GPS = {
    "jpeg-9mp-nokia83-gps.jpg": ((60, 8, 48), (24, 54, 24)),
    "jpeg-8mp-iphone6-gps.jpg": ((40, 26, 49), (-3, 43, 29)),
    "jpeg-small-nikon-p6000-gps.jpg": ((43, 28, 3), (11, 53, 6)),
}


@pytest.mark.parametrize("name", sorted(MANIFEST_GPS))
def test_gps_matches_the_manifest(client: httpx.Client, name: str) -> None:
    exif = exif_of(client, (CORPUS / name).read_bytes())
    assert exif is not None
    for key, (d, m, s) in zip(("latitude", "longitude"), MANIFEST_GPS[name], strict=True):
        expected = math.copysign(abs(d) + m / 60 + s / 3600, d)
        assert abs(exif[key] - expected) < 1 / 3600  # within one arc-second
        assert exif[key] == round(exif[key], 7)


def test_iphone_gps_extras_and_lens(client: httpx.Client) -> None:
    exif = exif_of(client, (CORPUS / "jpeg-8mp-iphone6-gps.jpg").read_bytes())
    assert exif is not None
    tags = exifread_tags("jpeg-8mp-iphone6-gps.jpg")
    assert exif["lens_make"] == "Apple"
    assert exif["lens_model"] == tags["EXIF LensModel"].values
    assert exif["altitude"] == round(number(tags["GPS GPSAltitude"]), 2)
    assert exif["direction"] == round(number(tags["GPS GPSImgDirection"]), 2)
    h, m, s = (int(v.num // v.den) for v in tags["GPS GPSTimeStamp"].values)
    date = tags["GPS GPSDate"].values.replace(":", "-")
    assert exif["gps_timestamp"] == f"{date}T{h:02d}:{m:02d}:{s:02d}Z"
    assert "speed" in exif and exif["speed"] >= 0


def test_exif_only_when_requested_and_present(client: httpx.Client) -> None:
    data = (CORPUS / "jpeg-small-nikon-p6000-gps.jpg").read_bytes()
    assert "exif" not in json.loads(metadata(client, data, "exif=0").text)
    assert exif_of(client, (CORPUS / "png-rgb16.png").read_bytes()) is None


# --- synthetic blocks, byte-exact in the file ---------------------------------------------


def test_spliced_block_every_rule_over_http(client: httpx.Client) -> None:
    block = tiff(
        [
            ascii_entry(0x010F, "Canon"),
            ascii_entry(0x0110, "EOS R5\0"),
            short(0x0112, 3),
            ascii_entry(0x013B, "Zoë Ünal".encode()),
            ascii_entry(0x8298, "© Zoë".encode("latin-1")),
            short(0x4746, 5),
        ],
        [
            ascii_entry(0x9003, "2023:07:04 08:09:10"),
            ascii_entry(0x9010, "+02:00"),
            ascii_entry(0x9011, "-07:00"),
            rational(0x829A, (1, 3)),
            short(0x9209, 25),
            srational(0x9204, (-1, 3)),
            undefined(0xA420, b"0123456789abcdef\0"),
            undefined(0x9286, b"UNICODE\0" + "Grüße ✓".encode("utf-16-le")),
        ],
        [
            ascii_entry(0x0001, "S"),
            rational(0x0002, (33, 1), (51, 1), (2196, 100)),
            ascii_entry(0x000C, "N"),
            rational(0x000D, (30, 1)),
        ],
    )
    exif = exif_of(client, jpeg_with_app1(block))
    assert exif == {
        "make": "Canon",
        "model": "EOS R5\0",
        "unique_id": "0123456789abcdef",
        "datetime": "2023-07-04T08:09:10.000+02:00",
        "orientation": "Rotate 180",
        "exposure_time": 0.3333333333333333,
        "flash": "Auto",
        "exposure_compensation": -0.3333333333333333,
        "latitude": -33.8561,
        "speed": 55.56,
        "artist": "Zoë Ünal",
        "copyright": "© Zoë",
        "user_comment": "Grüße ✓",
        "rating": 5,
    }
    r = metadata(client, jpeg_with_app1(block))
    assert '"artist":"Zoë Ünal"' in r.text  # raw UTF-8, no escapes
    assert r.headers["content-type"] == JSON


def test_big_endian_block_without_prefix_in_png(client: httpx.Client) -> None:
    block = tiff(
        [ascii_entry(0x010F, "Nikon")],
        [undefined(0x9286, b"UNICODE\0" + "Grüße ✓".encode("utf-16-be"))],
        big_endian=True,
        prefix=False,
    )
    r = metadata(client, png_with_exif(block))
    fields = json.loads(r.text)
    assert fields["format"] == "png"
    assert fields["exif"] == {"make": "Nikon", "user_comment": "Grüße ✓"}


def test_block_with_nothing_mapped_is_empty_object(client: httpx.Client) -> None:
    assert exif_of(client, jpeg_with_app1(tiff([short(0x0100, 640)]))) == {}


def test_impossible_dates_are_omitted(client: httpx.Client) -> None:
    block = tiff([], [ascii_entry(0x9003, "0000:00:00 00:00:00")])
    assert exif_of(client, jpeg_with_app1(block)) == {}
    block = tiff([], [ascii_entry(0x9003, "0050:01:02 03:04:05")])
    assert exif_of(client, jpeg_with_app1(block)) == {"datetime": "0050-01-02T03:04:05.000Z"}


MALFORMED = [
    b"Exif\0\0JUNKJUNKJUNKJUNK",
    b"Exif\0\0IM*\0\x08\0\0\0\0\0\0\0",
    b"Exif\0\0II+\0\x08\0\0\0\0\0\0\0",
    b"Exif\0\0II*\0\x02\0",
    b"Exif\0\0MM\0*\0\0\0\x01\0\0\0\0\0\0",
]


@pytest.mark.parametrize("block", MALFORMED)
@pytest.mark.parametrize("strict", ["", "&strict=1"])
def test_malformed_block_is_ignored_with_a_warning(
    client: httpx.Client, block: bytes, strict: str
) -> None:
    data = jpeg_with_app1(block)
    r = metadata(client, data, f"exif{strict}")
    assert r.status_code == 200, r.text
    fields = json.loads(r.text)
    assert "exif" not in fields
    assert fields["width"] == 16
    assert r.headers["x-imaged-warnings"] == WARNING


def test_exif_warning_comes_after_parameter_warnings(client: httpx.Client) -> None:
    data = jpeg_with_app1(MALFORMED[0])
    r = metadata(client, data, "exif&zz=1&stats=maybe")
    assert r.status_code == 200
    assert r.headers["x-imaged-warnings"] == (
        "zz: unknown parameter; stats: must be true, false, 1, or 0; " + WARNING
    )


def test_malformed_block_is_not_parsed_unless_asked(client: httpx.Client) -> None:
    data = jpeg_with_app1(MALFORMED[1])
    r = metadata(client, data, "stats")
    assert r.status_code == 200
    assert "x-imaged-warnings" not in r.headers
    assert "exif" not in json.loads(r.text)


def test_bit_flipped_camera_blocks_never_fail(client: httpx.Client) -> None:
    original = bytes(
        pyvips.Image.new_from_file(str(CORPUS / "jpeg-small-nikon-p6000-gps.jpg")).get("exif-data")
    )
    rng = random.Random(9)
    for _ in range(12):
        block = bytearray(original[:30000])
        for _ in range(rng.randint(1, 20)):
            block[rng.randrange(6, len(block))] = rng.randrange(256)
        r = metadata(client, jpeg_with_app1(bytes(block)))
        assert r.status_code == 200, r.text
        assert "null" not in r.text
