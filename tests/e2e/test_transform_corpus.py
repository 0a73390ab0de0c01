"""Every corpus image to every available encoder, without a 5xx; determinism under load."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.serverproc import CORPUS, ServerProcess
from tests.transform_support import decode, size

IMAGES = sorted(
    str(path.relative_to(CORPUS))
    for path in CORPUS.rglob("*")
    if path.is_file() and path.suffix.lower() != ".md"
)
# Displayed (oriented) size of each corpus image: the expected output height at width=64.
DISPLAYED = {
    "avif-olympus-epl8.avif": (1920, 1080),
    "gif-animated-10f.gif": (370, 285),
    "jpeg-12mp-olympus-ep3.jpg": (4032, 3024),
    "jpeg-12mp-xiaomi-mi9t-orient6.jpg": (3000, 4000),
    "jpeg-3mp-canon-sx60-orient6.jpg": (1536, 2048),
    "jpeg-8mp-iphone6-gps.jpg": (3264, 2448),
    "jpeg-9mp-nokia83-gps.jpg": (4608, 1976),
    "jpeg-adobergb-icc-sample.jpg": (290, 442),
    "jpeg-cmyk-swop-canon300d.jpg": (500, 333),
    "jpeg-small-nikon-p6000-gps.jpg": (640, 480),
    "png-palette-8bit.png": (290, 442),
    "png-rgb16.png": (290, 442),
    "png-rgba-2048x1536.png": (2048, 1536),
    "png-rgba-opaque-bird.png": (576, 384),
    "svg-libvips-logo.svg": (736, 552),
    "svg-w3c-struct-image-04-t.svg": (480, 360),
    "tiff-rgb16-adobergb-fujixt2.tiff": (317, 211),
    "webp-alpha.webp": (300, 300),
    "webp-animated-10f.webp": (370, 285),
    "webp-lossy-photo.webp": (1024, 772),
}
DISPLAYED.update({f"orientation/Landscape_{i}.jpg": (1800, 1200) for i in range(1, 9)})
HEIF_ONLY = {"heic-iphone11-displayp3-gps.heic": "heic"}


@pytest.fixture(scope="module")
def codecs(client: httpx.Client) -> dict[str, list[str]]:
    body: dict[str, list[str]] = client.get("/healthz").json()
    return body


def test_corpus_is_complete() -> None:
    assert set(IMAGES) == set(DISPLAYED) | set(HEIF_ONLY)


@pytest.mark.parametrize("name", IMAGES)
def test_corpus_image_to_every_encoder(
    client: httpx.Client, codecs: dict[str, list[str]], name: str
) -> None:
    data = (CORPUS / name).read_bytes()
    if name in HEIF_ONLY and HEIF_ONLY[name] not in codecs["decoders"]:
        r = client.put("/transform?width=64", content=data)
        assert r.status_code == 400
        assert r.text == f"image: decoding type {HEIF_ONLY[name]} is not supported"
        return

    def request(fmt: str) -> tuple[str, httpx.Response]:
        return fmt, client.put(f"/transform?width=64&format={fmt}", content=data)

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(request, codecs["encoders"]))
    width, height = DISPLAYED.get(name, (64, 64))
    for fmt, r in responses:
        assert r.status_code == 200, (name, fmt, r.status_code, r.text[:200])
        assert r.headers["x-image-width"] == "64"
        if name in DISPLAYED:
            assert abs(size(r)[1] - 64 * height / width) <= 1.5, (name, fmt, size(r))
        if fmt == "raw":
            channels = len(r.content) / (size(r)[0] * size(r)[1])
            assert channels in (3, 4), (name, channels)
        else:
            decode(r)


def test_twenty_parallel_identical_requests_are_byte_identical(server: ServerProcess) -> None:
    data = (CORPUS / "jpeg-8mp-iphone6-gps.jpg").read_bytes()
    url = "/transform?width=300&height=200&format=webp&blur=1.5"

    def request(_: int) -> bytes:
        with server.client() as c:
            r = c.put(url, content=data)
            assert r.status_code == 200
            return r.content

    with ThreadPoolExecutor(20) as pool:
        bodies = list(pool.map(request, range(20)))
    assert len(set(bodies)) == 1
    assert decode(bodies[0]).width == 300
