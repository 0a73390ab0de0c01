"""Unit tests of transform query parsing: every parameter, the warning order and texts,
and output-format negotiation against Accept (transform.md, http-api.md)."""

from __future__ import annotations

import pytest

from imaged.engine.options import BOX_BLUR, ParamWarning, TransformOptions
from imaged.params.kinds import FORMAT_REASON
from imaged.params.query import parse_query_string, strict_text
from imaged.params.transform import (
    negotiate_format,
    parse_accept,
    parse_transform_query,
)

FIT_LIST = "cover, contain, fill, inside, outside"
KERNEL_LIST = "nearest, linear, cubic, mitchell, lanczos2, lanczos3, mks2013, mks2021"
POSITION_LIST = (
    "top, right top, right, right bottom, bottom, left bottom, left, left top, north, "
    "northeast, east, southeast, south, southwest, west, northwest, center, centre, "
    "entropy, attention"
)


def parse(
    query: str, accept: str = "", limit: int = 16384
) -> tuple[TransformOptions, list[tuple[str, object, str]]]:
    parsed = parse_transform_query(parse_query_string(query), accept, limit)
    return parsed.options, [(w.param, w.value, w.reason) for w in parsed.warnings]


def test_defaults() -> None:
    options, warnings = parse("")
    assert options == TransformOptions()
    assert options.format == "jpeg" and options.fit == "cover" and options.kernel == "lanczos3"
    assert options.position == "center" and options.preset == "default"
    assert options.lossless is None and options.progressive is None and not options.greyscale
    assert warnings == []


# --- integers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("42", 42), ("%2042%20", 42), ("100.0", 100), ("1e2", 100), ("+7", 7), ("5.", 5)],
)
def test_integer_decimal_forms_are_accepted(raw: str, expected: int) -> None:
    options, warnings = parse(f"width={raw}")
    assert options.width == expected
    assert warnings == []


@pytest.mark.parametrize(
    "raw",
    ["abc", "100.5", "-1", "1e20", "%20%20", "0x40", "0o100", "0b1000000", "Infinity", "NaN",
     "1_000", "1e400", "%D9%A1"],
)  # fmt: skip
def test_integer_invalid_values_warn_and_unset(raw: str) -> None:
    options, warnings = parse(f"width={raw}")
    assert options.width is None
    assert len(warnings) == 1
    assert warnings[0][0] == "width" and warnings[0][2] == "must be a positive integer"


def test_integer_empty_is_unset_without_warning() -> None:
    options, warnings = parse("width=&height=&quality=&effort=")
    assert (options.width, options.height, options.quality, options.effort) == (None,) * 4
    assert warnings == []


def test_integer_clamps() -> None:
    options, warnings = parse("width=0&height=99999&quality=200", limit=5000)
    assert (options.width, options.height, options.quality) == (1, 5000, 100)
    assert warnings == [
        ("width", "0", "must be at least 1"),
        ("height", "99999", "must be at most 5000"),
        ("quality", "200", "must be at most 100"),
    ]
    options, warnings = parse("quality=0")
    assert options.quality == 1
    assert warnings == [("quality", "0", "must be at least 1")]


def test_repeated_value_is_invalid_and_echoed_joined() -> None:
    parsed = parse_transform_query(parse_query_string("width=1&width=2"), "", 16384)
    assert parsed.options.width is None
    assert parsed.warnings == [ParamWarning("width", "1,2", "must be a positive integer")]
    assert strict_text(parsed.warnings) == (
        'Invalid parameters:\n- width: must be a positive integer (got "1,2")'
    )


# --- effort -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "lo", "hi"),
    [("avif", 0, 9), ("heic", 0, 9), ("gif", 1, 10), ("png", 1, 10), ("jxl", 1, 9),
     ("webp", 0, 6)],
)  # fmt: skip
def test_effort_ranges_per_format(fmt: str, lo: int, hi: int) -> None:
    options, warnings = parse(f"format={fmt}&effort={hi + 5}")
    assert options.effort == hi
    assert warnings == [("effort", str(hi + 5), f"must be at most {hi} for {fmt}")]
    options, warnings = parse(f"format={fmt}&effort={lo}")
    assert options.effort == lo and warnings == []
    if lo > 0:
        options, warnings = parse(f"format={fmt}&effort=0")
        assert options.effort == lo
        assert warnings == [("effort", "0", f"must be at least {lo} for {fmt}")]


def test_effort_zero_is_a_real_value() -> None:
    options, _ = parse("format=webp&effort=0")
    assert options.effort == 0


@pytest.mark.parametrize("fmt", ["jpeg", "tiff", "raw", "pdf", "svg"])
def test_effort_dropped_silently_without_range(fmt: str) -> None:
    options, warnings = parse(f"format={fmt}&effort=99")
    assert options.effort is None and warnings == []
    options, warnings = parse(f"format={fmt}&effort=abc")
    assert options.effort is None
    assert warnings == [("effort", "abc", "must be a positive integer")]


def test_effort_range_follows_negotiated_format() -> None:
    options, warnings = parse("format=webp,png&effort=8", accept="image/png")
    assert options.format == "png" and options.effort == 8 and warnings == []
    options, warnings = parse("format=webp,png&effort=8", accept="image/webp")
    assert options.format == "webp" and options.effort == 6
    assert warnings == [("effort", "8", "must be at most 6 for webp")]


# --- booleans ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value", "warned"),
    [("", True, False), ("true", True, False), ("1", True, False), ("false", False, False),
     ("0", False, False), ("TRUE", True, True), ("yes", True, True), ("False", True, True)],
)  # fmt: skip
def test_booleans(raw: str, value: bool, warned: bool) -> None:
    for name in ("greyscale", "lossless", "progressive", "animated"):
        options, warnings = parse(f"{name}={raw}")
        assert getattr(options, name) is value
        assert warnings == ([(name, raw, "must be true, false, 1, or 0")] if warned else [])


def test_key_without_equals_is_empty_value() -> None:
    options, warnings = parse("greyscale&blur")
    assert options.greyscale is True and options.blur == BOX_BLUR and warnings == []


# --- blur -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "blur", "reason"),
    [
        ("false", None, None),
        ("0", None, None),
        ("", BOX_BLUR, None),
        ("true", BOX_BLUR, None),
        ("1", BOX_BLUR, None),
        ("1.0", 1.0, None),
        ("2.5", 2.5, None),
        ("0.3", 0.3, None),
        ("1000", 1000.0, None),
        ("0.0", 0.3, "must be at least 0.3"),
        ("-5", 0.3, "must be at least 0.3"),
        ("0.1", 0.3, "must be at least 0.3"),
        ("1e4", 1000.0, "must be at most 1000"),
        ("abc", None, "must be a boolean or number between 0.3 and 1000"),
        ("1e400", None, "must be a boolean or number between 0.3 and 1000"),
        ("Infinity", None, "must be a boolean or number between 0.3 and 1000"),
        ("0x10", None, "must be a boolean or number between 0.3 and 1000"),
    ],
)
def test_blur(raw: str, blur: object, reason: str | None) -> None:
    options, warnings = parse(f"blur={raw}")
    assert options.blur == blur
    assert warnings == ([("blur", raw, reason)] if reason else [])


# --- enums ------------------------------------------------------------------------------


def test_enum_values_and_spaces() -> None:
    options, warnings = parse("fit=contain&kernel=mks2021&position=right+top&preset=size")
    assert (options.fit, options.kernel, options.position, options.preset) == (
        "contain",
        "mks2021",
        "right top",
        "size",
    )
    assert warnings == []
    options, _ = parse("position=left%20bottom")
    assert options.position == "left bottom"


def test_enum_unknown_values_are_case_sensitive_and_listed() -> None:
    options, warnings = parse("fit=Cover&kernel=bicubic&position=middle&preset=fast")
    assert options == TransformOptions()
    assert warnings == [
        ("fit", "Cover", f"unknown value 'Cover', valid: {FIT_LIST}"),
        ("kernel", "bicubic", f"unknown value 'bicubic', valid: {KERNEL_LIST}"),
        ("position", "middle", f"unknown value 'middle', valid: {POSITION_LIST}"),
        ("preset", "fast", "unknown value 'fast', valid: default, quality, size"),
    ]


def test_enum_empty_is_unset() -> None:
    options, warnings = parse("fit=&kernel=&position=&preset=")
    assert options == TransformOptions() and warnings == []


# --- order ------------------------------------------------------------------------------


def test_warning_order_follows_the_table_after_unknown_parameters() -> None:
    query = (
        "animated=x&preset=x&position=x&kernel=x&fit=x&effort=x&progressive=x&lossless=x&greyscale=x"
        "&blur=x&quality=x&height=x&width=x&format=x&zzz=1&grayscale=1&url=http://a&strict=0"
    )
    _, warnings = parse(query)
    assert [w[0] for w in warnings] == [
        "zzz",
        "grayscale",
        "format",
        "width",
        "height",
        "quality",
        "blur",
        "greyscale",
        "lossless",
        "progressive",
        "effort",
        "fit",
        "kernel",
        "position",
        "preset",
        "animated",
    ]
    assert warnings[0] == ("zzz", "1", "unknown parameter")
    assert warnings[2] == ("format", "x", FORMAT_REASON)


def test_strict_text_lists_every_warning() -> None:
    parsed = parse_transform_query(parse_query_string("quality=abc&fit=a%0D%0Ab"), "", 16384)
    assert strict_text(parsed.warnings) == (
        "Invalid parameters:\n"
        '- quality: must be a positive integer (got "abc")\n'
        f"- fit: unknown value 'a\r\nb', valid: {FIT_LIST} (got \"a\r\nb\")"
    )


# --- negotiation ------------------------------------------------------------------------


def negotiated(raw: str, accept: str = "") -> tuple[str, list[str], bool]:
    fmt, warnings, vary = negotiate_format(raw, accept)
    assert all(w.param == "format" and w.reason == FORMAT_REASON for w in warnings)
    return fmt, [str(w.value) for w in warnings], vary


def test_single_token_formats() -> None:
    assert negotiated("") == ("jpeg", [], False)
    assert negotiated(" , ,") == ("jpeg", [], False)
    assert negotiated("PNG") == ("png", [], False)
    assert negotiated("jpg") == ("jpeg", [], False)
    assert negotiated(" TIF ") == ("tiff", [], False)
    assert negotiated("webp,") == ("webp", [], False)
    assert negotiated("Bogus") == ("jpeg", ["bogus"], False)
    assert negotiated("pdf") == ("pdf", [], False)


def test_format_list_parameter_is_joined() -> None:
    options, warnings = parse("format=avif&format=webp", accept="image/webp")
    assert options.format == "webp" and warnings == []


def test_negotiation_cases_of_the_spec() -> None:
    # The format list decides, not the Accept order or q-values.
    assert negotiated("avif,webp,jpeg", "image/webp, image/avif") == ("avif", [], True)
    assert negotiated("webp,png", "text/html, image/webp, image/png") == ("webp", [], True)
    assert negotiated("webp,png", "image/webp;q=0, image/png") == ("png", [], True)
    assert negotiated("webp,png", "image/webp;q=0.0, image/png;q=0.5") == ("png", [], True)
    assert negotiated("webp,png", "image/webp;Q=0.000") == ("png", [], True)
    assert negotiated("png,webp", "IMAGE/PNG") == ("png", [], True)
    # Wildcards never select; no match → the last token.
    assert negotiated("avif,webp", "*/*") == ("webp", [], True)
    assert negotiated("avif,webp", "image/*") == ("webp", [], True)
    assert negotiated("avif,webp") == ("webp", [], True)
    # raw only via application/octet-stream.
    assert negotiated("raw,png", "application/octet-stream") == ("raw", [], True)
    assert negotiated("raw,png", "image/png") == ("png", [], True)
    # A refusal anywhere wins over an acceptance elsewhere.
    assert negotiated("webp,png", "image/webp, image/webp;q=0") == ("png", [], True)


def test_negotiation_invalid_tokens() -> None:
    assert negotiated("bogus,webp,png", "image/webp") == ("webp", ["bogus"], True)
    assert negotiated("webp,bogus,png", "image/webp") == ("webp", [], True)
    assert negotiated("bogus1,webp,bogus2,png") == ("png", ["bogus1", "bogus2"], True)
    # Last token invalid: only that one is reported (QUIRK).
    assert negotiated("bogus1,bogus2") == ("jpeg", ["bogus2"], True)
    assert negotiated("webp,BOGUS", "image/png") == ("jpeg", ["bogus"], True)


def test_parse_accept_q_values() -> None:
    accepted, refused = parse_accept("image/webp;q=0.5, image/avif;q=0, image/png;q=x, ;q=1")
    assert accepted == {"image/webp", "image/png"}
    assert refused == {"image/avif"}
    accepted, refused = parse_accept("image/gif; level=1; q = 0 , image/jpeg;q=-1")
    assert accepted == set() and refused == {"image/gif"}


def test_negotiated_flag_reaches_the_result() -> None:
    parsed = parse_transform_query(parse_query_string("format=webp,png"), "", 16384)
    assert parsed.negotiated and parsed.options.format == "png"
    parsed = parse_transform_query(parse_query_string("format=webp"), "", 16384)
    assert not parsed.negotiated
