"""EXIF tags → the `exif` object of the metadata response (metadata.md, "Field mapping").

Works on the typed values of `imaged.engine.exif`; every rule omits a field whose value does
not fit it, so the result never carries null, NaN or a bytes object.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Callable
from typing import Any

from imaged.engine.exif import ExifTags, Ifd, Value, parse
from imaged.jsonfmt import js_number, round_k

# JavaScript's String.prototype.trim() whitespace (WhiteSpace + LineTerminator).
_JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DATETIME = re.compile(r"([0-9]{4}):([0-9]{2}):([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
_OFFSET = re.compile(r"[+-][0-9]{2}:[0-9]{2}")

ORIENTATION = {
    1: "Horizontal (normal)",
    2: "Mirror horizontal",
    3: "Rotate 180",
    4: "Mirror vertical",
    5: "Mirror horizontal and rotate 270 CW",
    6: "Rotate 90 CW",
    7: "Mirror horizontal and rotate 90 CW",
    8: "Rotate 270 CW",
}
EXPOSURE_PROGRAM = {
    0: "Not defined",
    1: "Manual",
    2: "Normal program",
    3: "Aperture priority",
    4: "Shutter priority",
    5: "Creative program",
    6: "Action program",
    7: "Portrait mode",
    8: "Landscape mode",
}
METERING_MODE = {
    0: "Unknown",
    1: "Average",
    2: "Center-weighted average",
    3: "Spot",
    4: "Multi-spot",
    5: "Pattern",
    6: "Partial",
    255: "Other",
}
WHITE_BALANCE = {0: "Auto", 1: "Manual"}
COLOR_SPACE = {1: "sRGB", 2: "Adobe RGB", 65535: "Uncalibrated"}
LIGHT_SOURCE = {
    0: "Unknown",
    1: "Daylight",
    2: "Fluorescent",
    3: "Tungsten (incandescent)",
    4: "Flash",
    9: "Fine weather",
    10: "Cloudy",
    11: "Shade",
    12: "Daylight fluorescent",
    13: "Day white fluorescent",
    14: "Cool white fluorescent",
    15: "White fluorescent",
    16: "Warm white fluorescent",
    17: "Standard light A",
    18: "Standard light B",
    19: "Standard light C",
    20: "D55",
    21: "D65",
    22: "D75",
    23: "D50",
    24: "ISO studio tungsten",
    255: "Other",
}
SCENE_CAPTURE_TYPE = {0: "Standard", 1: "Landscape", 2: "Portrait", 3: "Night scene"}
CONTRAST = {0: "Normal", 1: "Low", 2: "High"}
SATURATION = CONTRAST
SHARPNESS = {0: "Normal", 1: "Soft", 2: "Hard"}


def js_trim(text: str) -> str:
    return text.strip(_JS_WHITESPACE)


def bytes_text(data: bytes) -> str:
    """A byte value as text: UTF-8 if valid, else Latin-1; one trailing NUL removed."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text[:-1] if text.endswith("\0") else text


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number(value: Value) -> int | float | None:
    """A finite numeric scalar, else None."""
    if _is_number(value) and math.isfinite(value):  # type: ignore[arg-type]
        return value  # type: ignore[return-value]
    return None


def numbers(value: Value, count: int) -> list[float] | None:
    """A list of exactly `count` finite numbers, else None."""
    if not isinstance(value, list) or len(value) != count:
        return None
    if not all(_is_number(v) and math.isfinite(v) for v in value):
        return None
    return [float(v) for v in value]


def text(value: Value) -> str | None:
    """An ASCII string, or a byte value decoded to text; None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return bytes_text(value)
    return None


def raw(value: Value) -> Any:
    """The spec's *raw* rule: text as a string, numbers as is, unreadable omitted."""
    if isinstance(value, str | bytes):
        return text(value)
    if isinstance(value, list):
        return value if all(math.isfinite(v) for v in value) else None
    return number(value)


def enum(table: dict[int, str]) -> Callable[[Value], str | None]:
    def lookup(value: Value) -> str | None:
        n = number(value)
        # A float key finds the integer entry it equals (6.0 → 6), as the original's lookup.
        return None if n is None else table.get(n)  # type: ignore[arg-type]

    return lookup


def _int32(value: float) -> int:
    """JavaScript ToInt32 (what the original's bit operations saw)."""
    n = int(value) & 0xFFFFFFFF
    return n - (1 << 32) if n & 0x80000000 else n


def flash(value: Value) -> str | None:
    n = number(value)
    if n is None:
        return None
    bits = _int32(n)
    mode = (bits >> 3) & 3
    if mode == 2:
        return "Off"
    if mode == 3:
        return "Auto"
    return "Fired" if bits & 1 else "Did not fire"


def body_serial(value: Value) -> str | None:
    serial = text(value)
    if serial is not None:
        return serial or None
    n = number(value)
    return None if n is None else js_number(float(n))


def date_time(value: Value) -> str | None:
    """`YYYY:MM:DD HH:MM:SS` (a real date and time) → `YYYY-MM-DDTHH:MM:SS.000Z`."""
    if not isinstance(value, str):
        return None
    match = _DATETIME.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    if year < 1 or not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 59:
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    y, mo, d, h, mi, s = match.groups()
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}.000Z"


def _truthy(value: Value) -> bool:
    """JavaScript truthiness of a decoded value (the original took `OffsetTime || …`)."""
    if value is None or value == "":
        return False
    if _is_number(value):
        return value != 0 and not math.isnan(value)  # type: ignore[arg-type]
    return True


def datetime_field(photo: Ifd) -> str | None:
    stamp = date_time(photo.get(0x9003)) or date_time(photo.get(0x9004))
    if stamp is None:
        return None
    offset = next((v for v in (photo.get(0x9010), photo.get(0x9011)) if _truthy(v)), None)
    if isinstance(offset, str) and _OFFSET.fullmatch(offset):
        return stamp[:-1] + offset
    return stamp


def coordinate(value: Value, ref: Value) -> float | None:
    dms = numbers(value, 3)
    if dms is None:
        return None
    degrees = dms[0] + dms[1] / 60 + dms[2] / 3600
    if ref in ("S", "W"):
        degrees = -degrees
    return round_k(degrees, 7)


def altitude(value: Value, ref: Value) -> float | None:
    n = number(value)
    if n is None:
        return None
    if _is_number(ref) and ref == 1:
        n = -n
    return round_k(n, 2)


def speed(value: Value, ref: Value) -> float | None:
    n = number(value)
    if n is None:
        return None
    if ref == "M":
        n = n * 1.60934
    elif ref == "N":
        n = n * 1.852
    return round_k(n, 2)


def rounded(value: Value) -> float | None:
    n = number(value)
    return None if n is None else round_k(n, 2)


def digital_zoom(value: Value) -> float | None:
    n = number(value)
    return None if n is None or n <= 1 else round_k(n, 2)


def _two_digits(value: float) -> str:
    return js_number(float(math.floor(value))).rjust(2, "0")


def gps_timestamp(date: Value, time: Value) -> str | None:
    day = text(date)
    hms = numbers(time, 3)
    if not day or hms is None:
        return None
    return f"{day.replace(':', '-')}T{':'.join(_two_digits(v) for v in hms)}Z"


def user_comment(value: Value, big_endian: bool) -> str | None:
    if isinstance(value, bytes):
        if len(value) <= 8:
            return None
        encoding = js_trim(value[:8].decode("latin-1"))
        body = value[8:]
        if encoding.startswith("UNICODE"):
            body = body[: len(body) // 2 * 2]
            comment = body.decode("utf-16-be" if big_endian else "utf-16-le", errors="replace")
        else:
            comment = body.decode("utf-8", errors="replace")
        comment = js_trim(comment.replace("\0", ""))
        return comment or None
    if isinstance(value, str):
        return js_trim(value) or None
    return None


def rating(value: Value) -> int | None:
    n = number(value)
    if n is None or n not in (1, 2, 3, 4, 5):
        return None
    return int(n)


def map_tags(tags: ExifTags) -> dict[str, Any]:
    """The `exif` object, keys in the spec's order, unreadable/unfit values omitted."""
    image, photo, gps = tags.image, tags.photo, tags.gps
    iso = photo.get(0x8827)
    if iso is None:
        iso = image.get(0x8827)
    fields: list[tuple[str, Any]] = [
        ("make", raw(image.get(0x010F))),
        ("model", raw(image.get(0x0110))),
        ("software", raw(image.get(0x0131))),
        ("lens_make", raw(photo.get(0xA433))),
        ("lens_model", raw(photo.get(0xA434))),
        ("lens_serial", raw(photo.get(0xA435))),
        ("body_serial", body_serial(photo.get(0xA431))),
        ("unique_id", raw(photo.get(0xA420))),
        ("datetime", datetime_field(photo)),
        ("orientation", enum(ORIENTATION)(image.get(0x0112))),
        ("exposure_time", number(photo.get(0x829A))),
        ("f_number", number(photo.get(0x829D))),
        ("focal_length", number(photo.get(0x920A))),
        ("focal_length_35mm", number(photo.get(0xA405))),
        ("iso", number(iso)),
        ("flash", flash(photo.get(0x9209))),
        ("exposure_program", enum(EXPOSURE_PROGRAM)(photo.get(0x8822))),
        ("exposure_compensation", number(photo.get(0x9204))),
        ("metering_mode", enum(METERING_MODE)(photo.get(0x9207))),
        ("white_balance", enum(WHITE_BALANCE)(photo.get(0xA403))),
        ("color_space", enum(COLOR_SPACE)(photo.get(0xA001))),
        ("brightness", number(photo.get(0x9203))),
        ("max_aperture", number(photo.get(0x9205))),
        ("subject_distance", number(photo.get(0x9206))),
        ("light_source", enum(LIGHT_SOURCE)(photo.get(0x9208))),
        ("scene_capture_type", enum(SCENE_CAPTURE_TYPE)(photo.get(0xA406))),
        ("contrast", enum(CONTRAST)(photo.get(0xA408))),
        ("saturation", enum(SATURATION)(photo.get(0xA409))),
        ("sharpness", enum(SHARPNESS)(photo.get(0xA40A))),
        ("digital_zoom", digital_zoom(photo.get(0xA404))),
        ("latitude", coordinate(gps.get(0x0002), gps.get(0x0001))),
        ("longitude", coordinate(gps.get(0x0004), gps.get(0x0003))),
        ("altitude", altitude(gps.get(0x0006), gps.get(0x0005))),
        ("speed", speed(gps.get(0x000D), gps.get(0x000C))),
        ("direction", rounded(gps.get(0x0011))),
        ("gps_timestamp", gps_timestamp(gps.get(0x001D), gps.get(0x0007))),
        ("description", raw(image.get(0x010E))),
        ("artist", raw(image.get(0x013B))),
        ("copyright", raw(image.get(0x8298))),
        ("user_comment", user_comment(photo.get(0x9286), tags.big_endian)),
        ("rating", rating(image.get(0x4746))),
    ]
    return {key: value for key, value in fields if value is not None}


def exif_object(block: bytes) -> dict[str, Any]:
    """Parse an EXIF block and map it; raises (InvalidExif or other) if it cannot be read."""
    return map_tags(parse(block))
