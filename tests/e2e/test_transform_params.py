"""/transform parameter handling over HTTP: lenient warnings, strict errors, header
sanitising, format negotiation and the response headers (http-api.md, transform.md)."""

from __future__ import annotations

import httpx
import pytest
from tests.transform_support import TEXT, decode, ok, png, put, size, solid

PNG = png(solid(40, 30, [10, 120, 230]))
FIT_LIST = "cover, contain, fill, inside, outside"
KERNEL_LIST = "nearest, linear, cubic, mitchell, lanczos2, lanczos3, mks2013, mks2021"
POSITION_LIST = (
    "top, right top, right, right bottom, bottom, left bottom, left, left top, north, "
    "northeast, east, southeast, south, southwest, west, northwest, center, centre, "
    "entropy, attention"
)
CRLF = "a\r\nb"
BLUR_REASON = "must be a boolean or number between 0.3 and 1000"
FORMAT_REASON = "unknown format, valid: avif, gif, heic, jpeg, jxl, pdf, png, raw, svg, tiff, webp"
ALL_BAD = (
    "preset=Size&position=middle&kernel=bicubic&fit=squash&effort=99&progressive=maybe"
    "&lossless=2&greyscale=yes&blur=-1&quality=0&height=99999&width=abc&format=bmp"
    "&grayscale=1&foo=bar"
)


def unknown(value: str) -> str:
    return f"unknown value '{value}', valid: {FIT_LIST}"


@pytest.fixture(scope="module")
def codecs(client: httpx.Client) -> dict[str, list[str]]:
    body: dict[str, list[str]] = client.get("/healthz").json()
    return body


def test_response_headers(client: httpx.Client) -> None:
    r = ok(client, "width=20&format=png", PNG)
    assert r.headers["content-type"] == "image/png"
    assert size(r) == (20, 15)
    assert r.headers["x-response-time-ms"].isdigit()
    for absent in ("x-imaged-warnings", "vary", "cache-control", "etag"):
        assert absent not in r.headers
    assert decode(r).width == 20


def test_default_format_is_jpeg(client: httpx.Client) -> None:
    r = ok(client, "", PNG)
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content[:3] == b"\xff\xd8\xff"


def test_every_warning_in_order_and_text(client: httpx.Client) -> None:
    r = ok(client, ALL_BAD, PNG)
    assert r.headers["content-type"] == "image/jpeg"  # format fell back to jpeg
    assert r.headers["x-imaged-warnings"] == "; ".join(
        [
            "grayscale: unknown parameter",
            "foo: unknown parameter",
            f"format: {FORMAT_REASON}",
            "width: must be a positive integer",
            "height: must be at most 16384",
            "quality: must be at least 1",
            "blur: must be at least 0.3",
            "greyscale: must be true, false, 1, or 0",
            "lossless: must be true, false, 1, or 0",
            "progressive: must be true, false, 1, or 0",
            f"fit: unknown value 'squash', valid: {FIT_LIST}",
            f"kernel: unknown value 'bicubic', valid: {KERNEL_LIST}",
            f"position: unknown value 'middle', valid: {POSITION_LIST}",
            "preset: unknown value 'Size', valid: default, quality, size",
        ]
    )
    # The values were corrected: greyscale on, height clamped (no enlargement anyway).
    image = decode(r)
    assert size(r) == (40, 30)
    assert abs(image[0].avg() - image[2].avg()) < 3


def test_strict_mode_lists_every_warning(client: httpx.Client) -> None:
    r = put(client, ALL_BAD + "&strict=true", PNG)
    assert r.status_code == 400
    assert r.headers["content-type"] == TEXT
    assert r.text == "\n- ".join(
        [
            "Invalid parameters:",
            'grayscale: unknown parameter (got "1")',
            'foo: unknown parameter (got "bar")',
            f'format: {FORMAT_REASON} (got "bmp")',
            'width: must be a positive integer (got "abc")',
            'height: must be at most 16384 (got "99999")',
            'quality: must be at least 1 (got "0")',
            'blur: must be at least 0.3 (got "-1")',
            'greyscale: must be true, false, 1, or 0 (got "yes")',
            'lossless: must be true, false, 1, or 0 (got "2")',
            'progressive: must be true, false, 1, or 0 (got "maybe")',
            f"fit: unknown value 'squash', valid: {FIT_LIST} (got \"squash\")",
            f"kernel: unknown value 'bicubic', valid: {KERNEL_LIST} (got \"bicubic\")",
            f"position: unknown value 'middle', valid: {POSITION_LIST} (got \"middle\")",
            "preset: unknown value 'Size', valid: default, quality, size (got \"Size\")",
        ]
    )
    for header in ("x-image-width", "x-image-height", "x-response-time-ms", "x-imaged-warnings"):
        assert header not in r.headers


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("quality=abc&strict=true", 'quality: must be a positive integer (got "abc")'),
        ("quality=200&strict=1", 'quality: must be at most 100 (got "200")'),
        ("width=0x40&strict", 'width: must be a positive integer (got "0x40")'),
        ("width=1&width=2&strict=1", 'width: must be a positive integer (got "1,2")'),
        ("format=webp&effort=9&strict=TRUE", 'effort: must be at most 6 for webp (got "9")'),
        ("blur=1e400&strict=yes", f'blur: {BLUR_REASON} (got "1e400")'),
        ("fit=a%0D%0Ab&strict=1", "fit: " + unknown(CRLF) + f' (got "{CRLF}")'),
        ('fit=%22x&strict=1', f"fit: unknown value '\"x', valid: {FIT_LIST} (got \"\"x\")"),
        ("strict=1&strict=0&greyscale=x", 'greyscale: must be true, false, 1, or 0 (got "x")'),
    ],
)  # fmt: skip
def test_strict_single_warning(client: httpx.Client, query: str, body: str) -> None:
    r = put(client, query, PNG)
    assert r.status_code == 400
    assert r.text == "Invalid parameters:\n- " + body


@pytest.mark.parametrize("strict", ["strict=false", "strict=0"])
def test_strict_false_is_lenient(client: httpx.Client, strict: str) -> None:
    r = ok(client, f"quality=200&{strict}", PNG)
    assert r.headers["x-imaged-warnings"] == "quality: must be at most 100"


def test_strict_without_warnings_succeeds(client: httpx.Client) -> None:
    r = ok(client, "width=20&format=webp&effort=3&strict=1&url=ignored", PNG)
    assert "x-imaged-warnings" not in r.headers
    assert r.headers["content-type"] == "image/webp"


def test_decimal_forms_without_warning(client: httpx.Client) -> None:
    for value in ("%2020%20", "20.0", "2e1", "+20"):
        r = ok(client, f"width={value}&format=png", PNG)
        assert size(r) == (20, 15), value
        assert "x-imaged-warnings" not in r.headers


def test_header_sanitising(client: httpx.Client) -> None:
    r = ok(client, "kernel=%E2%82%AC", PNG)
    assert r.headers["x-imaged-warnings"] == (
        f"kernel: unknown value '%E2%82%AC', valid: {KERNEL_LIST}"
    )
    r = ok(client, "%0D%0AX-Injected=1", PNG)
    assert r.headers["x-imaged-warnings"] == "%0D%0AX-Injected: unknown parameter"
    assert "x-injected" not in r.headers
    r = ok(client, "fit=%C3%A9%00%09%7F", PNG)
    assert r.headers["x-imaged-warnings"].startswith("fit: unknown value '%C3%A9%00%09%7F'")
    # The strict body is not sanitised: raw UTF-8.
    r = put(client, "kernel=%E2%82%AC&strict=1", PNG)
    assert r.status_code == 400
    assert r.content.decode("utf-8").startswith("Invalid parameters:\n- kernel: unknown value '€'")


# --- negotiation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "accept", "expected"),
    [
        ("avif,webp,jpeg", "image/webp, image/avif", "image/avif"),
        ("webp,png", "text/html, image/webp, image/png", "image/webp"),
        ("webp,png", "image/webp;q=0, image/png", "image/png"),
        ("webp,png", "image/webp;q=0.000, image/png;q=0.1", "image/png"),
        ("png,webp", "IMAGE/PNG", "image/png"),
        ("avif,webp", "*/*", "image/webp"),
        ("avif,webp", "image/*", "image/webp"),
        ("avif,webp", None, "image/webp"),
        ("raw,png", "application/octet-stream", "application/octet-stream"),
        ("raw,png", "image/*", "image/png"),
        ("JPG,TIF", "image/tiff", "image/tiff"),
    ],
)
def test_negotiation(client: httpx.Client, fmt: str, accept: str | None, expected: str) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    r = ok(client, f"format={fmt}&width=10", PNG, headers)
    assert r.headers["content-type"] == expected
    assert r.headers["vary"] == "Accept"
    assert "x-imaged-warnings" not in r.headers


def test_negotiation_with_repeated_format_and_accept_lines(client: httpx.Client) -> None:
    headers = [("Accept", "text/html"), ("Accept", "image/png")]
    r = client.put("/transform?format=webp&format=png&format=gif", content=PNG, headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png" and r.headers["vary"] == "Accept"


def test_single_format_is_not_negotiated(client: httpx.Client) -> None:
    r = ok(client, "format=webp", PNG, {"Accept": "image/png"})
    assert r.headers["content-type"] == "image/webp"
    assert "vary" not in r.headers
    r = ok(client, "format=jpg,", PNG)
    assert r.headers["content-type"] == "image/jpeg" and "vary" not in r.headers


def test_negotiation_invalid_token_warnings(client: httpx.Client) -> None:
    r = ok(client, "format=bogus,webp,png", PNG, {"Accept": "image/webp"})
    assert r.headers["content-type"] == "image/webp"
    assert r.headers["x-imaged-warnings"] == f"format: {FORMAT_REASON}"
    r = ok(client, "format=bogus1,bogus2", PNG)
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-imaged-warnings"] == f"format: {FORMAT_REASON}"
    assert r.headers["vary"] == "Accept"
    r = put(client, "format=bogus1,webp,bogus2,png&strict=1", PNG)
    assert r.status_code == 400
    assert r.text == (
        f'Invalid parameters:\n- format: {FORMAT_REASON} (got "bogus1")'
        f'\n- format: {FORMAT_REASON} (got "bogus2")'
    )


def test_negotiated_effort_range(client: httpx.Client) -> None:
    r = ok(client, "format=webp,png&effort=8", PNG, {"Accept": "image/webp"})
    assert r.headers["x-imaged-warnings"] == "effort: must be at most 6 for webp"
    r = ok(client, "format=webp,png&effort=8", PNG, {"Accept": "image/png"})
    assert "x-imaged-warnings" not in r.headers
    r = ok(client, "format=jpeg&effort=80", PNG)
    assert "x-imaged-warnings" not in r.headers


def test_negotiated_non_encoder_is_an_error(
    client: httpx.Client, codecs: dict[str, list[str]]
) -> None:
    r = put(client, "format=webp,svg", PNG, {"Accept": "image/svg+xml"})
    assert r.status_code == 400
    assert r.text == "image: encoding type svg is not supported"
    r = put(client, "format=webp,heic", PNG, {"Accept": "image/png"})
    if "heic" in codecs["encoders"]:
        assert r.status_code == 200 and r.headers["content-type"] == "image/heic"
    else:
        assert r.status_code == 400
        assert r.text == "image: encoding type heic is not supported"
