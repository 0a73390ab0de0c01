"""Property-based tests: any query string on PUT /transform and /metadata gets a legal answer.

Queries are built from the real parameter names and their interesting values plus
arbitrary text, percent-escapes (valid, invalid, NUL, CR LF, invalid UTF-8) and
repeated keys, and sent byte for byte to the real server. Never a 5xx; a 200 is a
well-formed image or JSON whose headers are legal; a 400 is the documented text (or the
strict JSON); lenient/strict semantics hold for unknown parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qsl, quote

import pytest
import pyvips
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hardening import IMAGE_TYPES, JSON, TEXT, RawResponse, encode, raw_request, synthetic
from tests.serverproc import ServerProcess

WIDTH, HEIGHT = 32, 24
PNG = encode(synthetic(WIDTH, HEIGHT, bands=4), ".png")
DIMENSION_LIMIT = 16384

TRANSFORM_KNOWN = [
    *("url", "format", "width", "height", "quality", "effort", "blur", "greyscale"),
    *("lossless", "progressive", "fit", "kernel", "position", "preset", "strict"),
]
METADATA_KNOWN = ["url", "exif", "stats", "thumbhash", "strict"]

EXAMPLES = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Values every parameter should survive, already in raw (percent-encoded) form.
TRICKY = [
    "",
    "%",
    "%zz",
    "%00",
    "%0D%0A",
    "%FF",
    "%C3",
    "%E2%82%AC",
    "+",
    "=",
    "==",
    "%26",
    "%3D",
    "%2C",
    ",",
    ",,",
    "true",
    "false",
    "TRUE",
    "1",
    "0",
    "-1",
    "abc",
    "%20%20",
    "%09",
    "0x40",
    "0o100",
    "0b1",
    "Infinity",
    "-Infinity",
    "NaN",
    "inf",
    "1e400",
    "-1e400",
    "1_000",
    "%D9%A3",  # ARABIC-INDIC DIGIT THREE
    "1" * 400,
]
SMALL_NUMBERS = ["1", "2", "8", "23", "31", "32", "33", "100", "1.0", "1e1", "+7", ".5", " 42 "]
# Large sizes only for `width`: a huge width *and* height with `contain` would be a
# legitimate 268-megapixel canvas, which is a load test rather than a fuzz case.
WIDE = ["16384", "16385", "4294967295", "4294967296", "99999999999"]
VALUES: dict[str, list[str]] = {
    "format": [
        "jpeg",
        "jpg",
        "JPG",
        "png",
        "webp",
        "gif",
        "tiff",
        "tif",
        "avif",
        "raw",
        "heic",
        "jxl",
        "svg",
        "pdf",
        "bogus",
        "png,webp",
        "avif,webp,jpeg",
        "bogus1,bogus2",
        ",png,",
        "%20PNG%20",
    ],
    "width": SMALL_NUMBERS + WIDE,
    "height": SMALL_NUMBERS,
    "quality": ["1", "50", "100", "101", "0", "99.5"],
    "effort": ["0", "1", "4", "6", "9", "10", "11"],
    "blur": ["0.3", "0.2", "1", "1.0", "2.5", "0.0", "-5", "50", "1000", "1001", "5000"],
    "greyscale": ["", "true", "1", "false", "0", "yes"],
    "lossless": ["", "true", "false", "maybe"],
    "progressive": ["", "true", "false", "2"],
    "fit": ["cover", "contain", "fill", "inside", "outside", "Cover", "none"],
    "kernel": [
        *("nearest", "linear", "cubic", "mitchell", "lanczos2", "lanczos3", "mks2013"),
        *("mks2021", "box"),
    ],
    "position": [
        *("center", "centre", "right%20top", "right+top", "left+bottom", "north"),
        *("southeast", "entropy", "attention", "middle"),
    ],
    "preset": ["default", "quality", "size", "fast"],
    "strict": ["", "true", "1", "false", "0", "TRUE", "no"],
    "url": ["http://127.0.0.1:1/x.png", "file:///etc/passwd", ""],
    "exif": ["", "true", "false", "1", "0", "maybe"],
    "stats": ["", "true", "false", "1", "0", "yes"],
    "thumbhash": ["", "true", "false", "1", "0", "on"],
}

raw_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=24
).map(lambda s: quote(s, safe="!$'()*,;:@/?~"))
ascii_junk = st.text(alphabet=st.sampled_from("%+=,;:/?@!$'()*-._~ aZ09"), max_size=12).map(
    lambda s: s.replace(" ", "+")
)


def value_for(key: str) -> st.SearchStrategy[str]:
    known = VALUES.get(key, [])
    options: list[st.SearchStrategy[str]] = [st.sampled_from(TRICKY), raw_text, ascii_junk]
    if known:
        options = [st.sampled_from(known), st.sampled_from(known), *options]
    return st.one_of(*options)


@st.composite
def queries(draw: st.DrawFn, known: list[str]) -> str:
    keys = st.one_of(
        st.sampled_from(known),
        st.sampled_from(known),
        st.sampled_from(["Width", "grayscale", "", "%00", "a%0D%0Ab", "strict%00", "w%C3%A9"]),
        raw_text,
    )
    pairs: list[str] = []
    for _ in range(draw(st.integers(0, 12))):
        key = draw(keys)
        form = draw(st.sampled_from(["pair", "pair", "pair", "bare", "empty"]))
        if form == "empty":
            pairs.append("")
        elif form == "bare":
            pairs.append(key)
        else:
            pairs.append(f"{key}={draw(value_for(key))}")
    return "&".join(pairs)


def decoded(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace")


def grouped(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    values: dict[str, str | list[str]] = {}
    for key, value in pairs:
        if key in values:
            old = values[key]
            values[key] = [*old, value] if isinstance(old, list) else [old, value]
        else:
            values[key] = value
    return values


def is_strict(values: dict[str, str | list[str]]) -> bool:
    return "strict" in values and values["strict"] not in ("false", "0")


def sanitised(text: str) -> str:
    return "".join(
        c if " " <= c <= "~" else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in text
    )


def assert_legal_headers(r: RawResponse) -> None:
    assert r.status < 500, (r.status, r.text)
    for name, value in r.headers:
        assert all(" " <= c <= "~" for c in name + value), (name, value)


def assert_error_shape(r: RawResponse) -> None:
    names = {name.lower() for name, _ in r.headers}
    assert not names & {"x-image-width", "x-image-height", "x-imaged-warnings"}, r.headers
    assert r.body, "an error needs a body"


def unknown_keys(values: dict[str, str | list[str]], known: list[str]) -> list[str]:
    return [key for key in values if key not in known]


@pytest.fixture(scope="module")
def port(server: ServerProcess) -> Iterator[int]:
    yield server.port
    assert server.proc.poll() is None, "the server died during fuzzing"
    assert "internal error" not in server.log()


@EXAMPLES
@given(query=queries(TRANSFORM_KNOWN))
def test_transform_any_query(port: int, query: str) -> None:
    r = raw_request(port, "PUT", f"/transform?{query}", PNG)
    assert_legal_headers(r)
    values = grouped(decoded(query))
    unknown = unknown_keys(values, TRANSFORM_KNOWN)
    strict = is_strict(values)
    if r.status == 200:
        content_type = r.header("content-type")
        assert content_type in IMAGE_TYPES, content_type
        width, height = int(r.header("x-image-width") or 0), int(r.header("x-image-height") or 0)
        assert 1 <= width <= DIMENSION_LIMIT and 1 <= height <= DIMENSION_LIMIT
        assert int(r.header("x-response-time-ms") or -1) >= 0
        if content_type == "application/octet-stream":
            assert len(r.body) % (width * height) == 0
            assert 1 <= len(r.body) // (width * height) <= 4
        else:
            image = pyvips.Image.new_from_buffer(r.body, "")
            assert (image.width, image.height) == (width, height)
        warnings = r.header("x-imaged-warnings")
        if strict:
            assert warnings is None and not unknown, (query, warnings)
        for key in unknown:
            assert warnings is not None and f"{sanitised(key)}: unknown parameter" in warnings
    else:
        assert r.status == 400, (query, r.status, r.text)
        assert r.header("content-type") == TEXT
        assert_error_shape(r)
        assert r.text.startswith(("Invalid parameters:\n- ", "image: ")), r.text
        if r.text.startswith("Invalid parameters:"):
            assert strict
        if strict and unknown:
            assert r.text.startswith("Invalid parameters:\n- "), r.text
            assert f"\n- {unknown[0]}: unknown parameter (got " in r.text


@EXAMPLES
@given(query=queries(METADATA_KNOWN))
def test_metadata_any_query(port: int, query: str) -> None:
    r = raw_request(port, "PUT", f"/metadata?{query}", PNG)
    assert_legal_headers(r)
    values = grouped(decoded(query))
    unknown = unknown_keys(values, METADATA_KNOWN)
    strict = is_strict(values)
    if r.status == 200:
        assert r.header("content-type") == JSON
        body = r.json()
        assert isinstance(body, dict)
        assert (body["format"], body["width"], body["height"]) == ("png", WIDTH, HEIGHT)
        assert body["size"] == len(PNG)
        warnings = r.header("x-imaged-warnings")
        for key in unknown:
            assert warnings is not None and f"{sanitised(key)}: unknown parameter" in warnings
        if strict:
            assert not unknown
    else:
        assert r.status == 400, (query, r.status, r.text)
        assert_error_shape(r)
        if r.header("content-type") == JSON:
            body = json.loads(r.body)
            assert strict and list(body) == ["error", "details"], body
            assert body["error"] == "Invalid parameters" and body["details"]
            params = [detail["param"] for detail in body["details"]]
            assert params[: len(unknown)] == unknown
        else:
            assert r.header("content-type") == TEXT
            assert r.text.startswith("image: "), r.text
            assert not (strict and unknown)
