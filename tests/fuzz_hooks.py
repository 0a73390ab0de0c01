"""schemathesis hooks for the fuzz run (`tests/e2e/test_openapi_fuzz.py`), loaded by the
`st` process through `SCHEMATHESIS_HOOKS=tests.fuzz_hooks`.

Bodies: schemathesis' own bytes, or a small real image, or a real image cut short or with a
few bytes flipped, or arbitrary bytes. `url` values (query and pipeline JSON): schemathesis'
own string, or an image (or a 404) on the loopback origin whose base URL is in
`FUZZ_ORIGIN`.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

from tests.exif_blob import ascii_entry, jpeg_with_app1, short, tiff
from tests.serverproc import CORPUS

ORIGIN_ENV = "FUZZ_ORIGIN"
# Small inputs keep each request in the tens of milliseconds.
CORPUS_SAMPLES = (
    "jpeg-small-nikon-p6000-gps.jpg",
    "jpeg-adobergb-icc-sample.jpg",
    "png-palette-8bit.png",
    "webp-alpha.webp",
    "gif-animated-10f.gif",
    "svg-libvips-logo.svg",
    "tiff-rgb16-adobergb-fujixt2.tiff",
)


def _generated_samples() -> list[bytes]:
    """Tiny images of the shapes the corpus lacks: RGBA, lossless WebP, 16-bit grey, EXIF
    orientation, 1×1."""
    import pyvips

    gradient = pyvips.Image.xyz(7, 5)[0] * 30
    rgba = gradient.bandjoin([255 - gradient, gradient * 4, gradient + 60]).cast("uchar")
    rgba = rgba.copy(interpretation="srgb")
    grey16 = (pyvips.Image.xyz(9, 9)[1] * 7000).cast("ushort").copy(interpretation="grey16")
    exif = tiff([ascii_entry(0x010F, "Canon"), short(0x0112, 6)])
    return [
        rgba.write_to_buffer(".png"),
        rgba.extract_band(0, n=3).write_to_buffer(".webp", lossless=True),
        grey16.write_to_buffer(".png"),
        jpeg_with_app1(b"Exif\0\0" + exif),
        pyvips.Image.black(1, 1).write_to_buffer(".jpg"),
    ]


SAMPLES = [(CORPUS / name).read_bytes() for name in CORPUS_SAMPLES] + _generated_samples()


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    """A real image cut short, or with up to 8 bytes changed."""
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


IMAGE_BYTES = st.one_of(st.sampled_from(SAMPLES), _damaged(), st.binary(max_size=512))


def _source_urls() -> list[str]:
    origin = os.environ[ORIGIN_ENV]
    return [f"{origin}/img/{name}" for name in CORPUS_SAMPLES] + [f"{origin}/status/404"]


def _url(drawn: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(drawn), st.sampled_from(_source_urls()))


@schemathesis.hook
def flatmap_query(ctx: schemathesis.HookContext, query: Any) -> st.SearchStrategy[Any]:
    if not isinstance(query, dict) or "url" not in query:
        return st.just(query)
    return _url(query["url"]).map(lambda url: {**query, "url": url})


@schemathesis.hook
def flatmap_body(ctx: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    if isinstance(body, bytes):  # an upload
        return st.one_of(st.just(body), IMAGE_BYTES)
    if isinstance(body, dict) and "file" in body:  # the pipeline's multipart form
        return IMAGE_BYTES.map(lambda image: {**body, "file": image})
    if isinstance(body, dict) and "url" in body:  # the pipeline's JSON form
        return _url(body["url"]).map(lambda url: {**body, "url": url})
    return st.just(body)
